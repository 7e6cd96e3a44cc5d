package pivot_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
	"github.com/stretchr/testify/require"
)

// inProcess sets up pivot on a server that is never started (its storage is started by
// hand) and returns a function serving one request through the server's router.
func inProcess(t testing.TB, pivotAddr string) (func(method, target, body string) int, ooo.Database) {
	t.Helper()
	db := &ooo.MemoryStorage{}
	require.NoError(t, db.Start(ooo.StorageOpt{}))
	server := &ooo.Server{Storage: db, Pivot: pivotAddr}
	cfg := testConfig()
	result := pivot.Setup(server, cfg)
	t.Cleanup(func() {
		result.Close()
		db.Close()
	})
	serve := func(method, target, body string) int {
		path, query, _ := strings.Cut(target, "?")
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.URL.RawQuery = query // as received: fuzzed queries need not be well formed
		require.NoError(t, pivot.SignRequest(req, []byte(body), cfg))
		rec := httptest.NewRecorder()
		server.Router.ServeHTTP(rec, req)
		return rec.Code
	}
	return serve, db
}

// feedHead is the state of a storage's change feed, to detect any change.
func feedHead(t testing.TB, db ooo.Database) string {
	t.Helper()
	raw, err := db.Keys()
	require.NoError(t, err)
	return fmt.Sprint(string(raw), state(t, db, syncedPaths, false))
}

func FuzzApplyRoute(f *testing.F) {
	f.Add("users/*", `{"entries":[{"key":"users/a","created":1700000000000000000,"data":{"x":1}}]}`)
	f.Add("users/*", `{"entries":[{"key":"users/a","updated":5,"deleted":true}]}`)
	f.Add("settings", `{"entries":[{"key":"settings","created":1,"updated":2,"data":"s"}]}`)
	f.Add("users/*", `{"entries":[{"key":"users/*","created":1,"data":1}]}`)
	f.Add("users/*", `{"entries":[{"key":"../x","created":1,"data":1}]}`)
	f.Add("users/*", `{"entries":null}`)
	f.Add("users/*", `{"entries":[{}]}`)
	f.Add("nope", `{}`)
	f.Add("users/*", `[`)
	f.Add("users/*", `{"entries":[{"key":"users/a","created":-1,"data":1}]}`)
	f.Fuzz(func(t *testing.T, k, body string) {
		serve, db := inProcess(t, "")
		before := feedHead(t, db)
		code := serve(http.MethodPost, pivot.DefaultRoutePrefix+"/apply?key="+url.QueryEscape(k), body)
		if code >= 500 {
			t.Fatalf("status %d for key %q body %q", code, k, body)
		}
		if code != http.StatusOK && feedHead(t, db) != before {
			t.Fatalf("status %d but the storage changed (key %q body %q)", code, k, body)
		}
	})
}

// FuzzReadRoutes sends arbitrary queries to the read routes (changes, digest, status).
func FuzzReadRoutes(f *testing.F) {
	f.Add("key=users/*&since=0&limit=10")
	f.Add("key=settings")
	f.Add("key=users/*&since=18446744073709551615")
	f.Add("key=users/*&since=-1")
	f.Add("key=users/*&limit=0")
	f.Add("key=%zz")
	f.Add("")
	f.Fuzz(func(t *testing.T, query string) {
		serve, db := inProcess(t, "")
		require.NoError(t, func() error { _, err := db.Set("users/a", []byte(`1`)); return err }())
		before := feedHead(t, db)
		for _, route := range []string{"/changes", "/digest", "/status"} {
			code := serve(http.MethodGet, pivot.DefaultRoutePrefix+route+"?"+query, "")
			if code >= 500 {
				t.Fatalf("%s: status %d for query %q", route, code, query)
			}
		}
		if feedHead(t, db) != before {
			t.Fatalf("a read changed the storage (query %q)", query)
		}
	})
}

func FuzzTriggerRoute(f *testing.F) {
	f.Add(`{"keys":["users/*"]}`)
	f.Add(`{"keys":[]}`)
	f.Add(`{"keys":["nope"]}`)
	f.Add(`{"keys":["users/*","settings","things/*","users/*"]}`)
	f.Add(`{}`)
	f.Add(`{"keys":"users/*"}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, body string) {
		// A node whose pivot does not exist: the trigger must still answer at once.
		serve, _ := inProcess(t, "127.0.0.1:1")
		code := serve(http.MethodPost, pivot.DefaultRoutePrefix+"/trigger", body)
		if code != http.StatusAccepted && (code < 400 || code >= 500) {
			t.Fatalf("status %d for body %q", code, body)
		}
	})
}
