package ooo_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/benitogf/pivot/ooo"
)

// A write over the storage's data limit is refused by every REST write route with 413
// and the storage's reason, and leaves nothing behind.
func TestServer_DataLimit(t *testing.T) {
	db := &ooo.MemoryStorage{}
	db.SetDataLimit(64)
	s := start(t, func(s *ooo.Server) { s.Storage = db })
	big := `{"v":"` + strings.Repeat("<", 80) + `"}`
	want := func(res response) {
		t.Helper()
		if !strings.Contains(res.body, ooo.ErrTooLarge.Error()) || !strings.Contains(res.body, "the limit is 64 bytes") {
			t.Fatalf("body %q does not say why", res.body)
		}
	}
	want(expect(t, s, "POST", "/things/*", big, http.StatusRequestEntityTooLarge, ""))
	want(expect(t, s, "PUT", "/settings", big, http.StatusRequestEntityTooLarge, ""))
	expect(t, s, "GET", "/", "", http.StatusOK, `{"keys":[]}`)

	expect(t, s, "PUT", "/things/a", `{"v":"small"}`, http.StatusOK, "")
	before := expect(t, s, "GET", "/things/a", "", http.StatusOK, "").body
	want(expect(t, s, "PATCH", "/things/a", `{"w":"`+strings.Repeat("x", 60)+`"}`, http.StatusRequestEntityTooLarge, ""))
	want(expect(t, s, "PATCH", "/things/*", `{"w":"`+strings.Repeat("x", 60)+`"}`, http.StatusRequestEntityTooLarge, ""))
	if after := expect(t, s, "GET", "/things/a", "", http.StatusOK, "").body; after != before {
		t.Fatalf("a refused patch changed the key: %s, was %s", after, before)
	}

	// At the limit exactly, the write is accepted.
	exact := `{"v":"` + strings.Repeat("y", 64-len(`{"v":""}`)) + `"}`
	expect(t, s, "PUT", "/exact", exact, http.StatusOK, "")
}
