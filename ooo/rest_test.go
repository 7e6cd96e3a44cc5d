package ooo_test

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
)

func decodeObject(tb testing.TB, body string) meta.Object {
	tb.Helper()
	obj, err := meta.Decode([]byte(body))
	if err != nil {
		tb.Fatalf("decode %q: %v", body, err)
	}
	return obj
}

func decodeList(tb testing.TB, body string) []meta.Object {
	tb.Helper()
	list, err := meta.DecodeList([]byte(body))
	if err != nil {
		tb.Fatalf("decode list %q: %v", body, err)
	}
	return list
}

func TestServer_KeyList(t *testing.T) {
	s := start(t, nil)
	expect(t, s, "GET", "/", "", http.StatusOK, `{"keys":[]}`)
	for _, k := range []string{"b", "A", "c/1"} {
		expect(t, s, "POST", "/"+k, `1`, http.StatusOK, "")
	}
	res := expect(t, s, "GET", "/", "", http.StatusOK, `{"keys":["A","b","c/1"]}`)
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
}

func TestServer_PostGetPutSingleKey(t *testing.T) {
	s := start(t, nil)
	expect(t, s, "POST", "/ab", `{"x":1}`, http.StatusOK, `{"index":"ab"}`) // two characters are fine
	res := expect(t, s, "GET", "/ab", "", http.StatusOK, "")
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	first := decodeObject(t, res.body)
	if first.Path != "ab" || first.Index != "ab" || string(first.Data) != `{"x":1}` || first.Created == 0 || first.Updated != 0 {
		t.Fatalf("GET after POST = %+v", first)
	}
	expect(t, s, "PUT", "/ab", `{"x":2}`, http.StatusOK, `{"index":"ab"}`)
	second := decodeObject(t, expect(t, s, "GET", "/ab", "", http.StatusOK, "").body)
	if second.Created != first.Created || second.Updated <= first.Created || string(second.Data) != `{"x":2}` {
		t.Fatalf("GET after PUT = %+v (first %+v)", second, first)
	}
	expect(t, s, "POST", "/deep/a/b", `"text"`, http.StatusOK, `{"index":"b"}`)
	if obj := decodeObject(t, expect(t, s, "GET", "/deep/a/b", "", http.StatusOK, "").body); string(obj.Data) != `"text"` {
		t.Fatalf("data = %s", obj.Data)
	}
}

func TestServer_PostToListBuildsUniqueIndexes(t *testing.T) {
	s := start(t, nil)
	before := time.Now().UnixNano()
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		res := expect(t, s, "POST", "/things/*", `{"n":1}`, http.StatusOK, "")
		var out struct{ Index string }
		if err := json.Unmarshal([]byte(res.body), &out); err != nil {
			t.Fatal(err)
		}
		if seen[out.Index] {
			t.Fatalf("index %s given twice", out.Index)
		}
		seen[out.Index] = true
		if stamp := key.Decode(out.Index); stamp < before-int64(time.Second) || stamp > time.Now().UnixNano()+int64(time.Second) {
			t.Fatalf("index %s is not a current stamp", out.Index)
		}
		expect(t, s, "GET", "/things/"+out.Index, "", http.StatusOK, "")
	}
	list := decodeList(t, expect(t, s, "GET", "/things/*", "", http.StatusOK, "").body)
	if len(list) != 50 {
		t.Fatalf("list has %d items, want 50", len(list))
	}
	for i := 1; i < len(list); i++ {
		if list[i].Created < list[i-1].Created {
			t.Fatal("list is not sorted by created")
		}
	}
}

func TestServer_GlobWritesAreRefused(t *testing.T) {
	s := start(t, nil)
	for _, tc := range []struct{ method, path, want string }{
		{"POST", "/*", ooo.ErrGlobWrite.Error()},
		{"PUT", "/things/*", ooo.ErrGlobWrite.Error()},
		{"PUT", "/*", ooo.ErrGlobWrite.Error()},
		{"POST", "/a/*/b", ooo.ErrInvalidKey.Error()},
		{"POST", "/*/a", ooo.ErrInvalidKey.Error()},
		{"PATCH", "/a/*/*", ooo.ErrInvalidKey.Error()},
	} {
		expect(t, s, tc.method, tc.path, `{"a":1}`, http.StatusBadRequest, tc.want)
	}
	expect(t, s, "GET", "/", "", http.StatusOK, `{"keys":[]}`)
}

func TestServer_InvalidKeysAre400(t *testing.T) {
	s := start(t, nil)
	paths := []string{"/a:b", "/a//b", "/a/", "/a%20b", "/a/./b", "/a/../b", "/..", "/a**", "/%2Fa", "/a%3Ab", "/é"}
	for _, p := range paths {
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			res := do(t, s, m, p, `{"a":1}`, nil)
			if res.status != http.StatusBadRequest || strings.TrimSpace(res.body) != ooo.ErrInvalidKey.Error() {
				t.Fatalf("%s %s = %d %q, want 400 %q", m, p, res.status, res.body, ooo.ErrInvalidKey)
			}
		}
	}
	expect(t, s, "GET", "/", "", http.StatusOK, `{"keys":[]}`)
}

func TestServer_GetMissing(t *testing.T) {
	s := start(t, nil)
	expect(t, s, "GET", "/missing", "", http.StatusNotFound, ooo.ErrEmptyKey.Error())
	expect(t, s, "GET", "/missing/*", "", http.StatusOK, `[]`)
	expect(t, s, "GET", "/*/x", "", http.StatusOK, `[]`)
}

func TestServer_Patch(t *testing.T) {
	s := start(t, nil)
	expect(t, s, "PATCH", "/p", `{"a":1}`, http.StatusNotFound, "")
	expect(t, s, "POST", "/p", `{"a":1,"b":{"c":1}}`, http.StatusOK, "")
	expect(t, s, "PATCH", "/p", `{"b":{"d":2}}`, http.StatusOK, `{"index":"p"}`)
	obj := decodeObject(t, expect(t, s, "GET", "/p", "", http.StatusOK, "").body)
	if canonical(obj.Data) != `{"a":1,"b":{"c":1,"d":2}}` || obj.Updated == 0 {
		t.Fatalf("patched = %+v", obj)
	}
	expect(t, s, "PATCH", "/p", `{"a":1}`, http.StatusConflict, "")
	expect(t, s, "PATCH", "/p", `[1]`, http.StatusBadRequest, "")
	expect(t, s, "PATCH", "/p", `"x"`, http.StatusBadRequest, "")

	expect(t, s, "POST", "/l/1", `{"n":0}`, http.StatusOK, "")
	expect(t, s, "POST", "/l/2", `{"n":0}`, http.StatusOK, "")
	expect(t, s, "PATCH", "/l/*", `{"n":5}`, http.StatusOK, `{"index":"*"}`)
	for _, o := range decodeList(t, expect(t, s, "GET", "/l/*", "", http.StatusOK, "").body) {
		if string(o.Data) != `{"n":5}` {
			t.Fatalf("list item after glob patch = %s", o.Data)
		}
	}
}

func TestServer_Delete(t *testing.T) {
	s := start(t, nil)
	expect(t, s, "DELETE", "/d", "", http.StatusNotFound, "")
	expect(t, s, "POST", "/d", `1`, http.StatusOK, "")
	res := expect(t, s, "DELETE", "/d", "", http.StatusNoContent, "")
	if res.body != "" {
		t.Fatalf("204 with body %q", res.body)
	}
	expect(t, s, "GET", "/d", "", http.StatusNotFound, "")
	expect(t, s, "DELETE", "/none/*", "", http.StatusNoContent, "")
	expect(t, s, "POST", "/g/1", `1`, http.StatusOK, "")
	expect(t, s, "POST", "/g/2", `2`, http.StatusOK, "")
	expect(t, s, "POST", "/h/1", `3`, http.StatusOK, "")
	expect(t, s, "DELETE", "/g/*", "", http.StatusNoContent, "")
	expect(t, s, "GET", "/g/*", "", http.StatusOK, `[]`)
	expect(t, s, "GET", "/h/1", "", http.StatusOK, "")
}

func TestServer_Bodies(t *testing.T) {
	s := start(t, func(s *ooo.Server) { s.MaxBodyBytes = 64 })
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"empty", "", http.StatusBadRequest},
		{"blank", "  \n ", http.StatusBadRequest},
		{"malformed", `{"a":`, http.StatusBadRequest},
		{"trailing garbage", `{"a":1}garbage`, http.StatusBadRequest},
		{"two values", `{"a":1} {"b":2}`, http.StatusBadRequest},
		{"not json", `hello`, http.StatusBadRequest},
		{"too large", `{"a":"` + strings.Repeat("x", 100) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range []string{"POST", "PUT", "PATCH"} {
				res := do(t, s, m, "/b", tc.body, nil)
				if res.status != tc.status || strings.TrimSpace(res.body) == "" {
					t.Fatalf("%s %q = %d %q, want %d with a message", m, tc.body, res.status, res.body, tc.status)
				}
			}
		})
	}
	expect(t, s, "GET", "/", "", http.StatusOK, `{"keys":[]}`) // nothing was stored
	for _, v := range []string{`"s"`, `12.5`, `null`, `true`, `[1,2]`, ` {"a":1} `} {
		expect(t, s, "POST", "/b", v, http.StatusOK, "")
		obj := decodeObject(t, expect(t, s, "GET", "/b", "", http.StatusOK, "").body)
		if canonical(obj.Data) != canonical([]byte(v)) {
			t.Fatalf("stored %s, want %s", obj.Data, v)
		}
	}
}

func TestServer_MethodNotAllowed(t *testing.T) {
	s := start(t, nil)
	res := expect(t, s, "OPTIONS", "/a", "", http.StatusMethodNotAllowed, ooo.ErrMethodNotAllowed.Error())
	if res.header.Get("Allow") == "" {
		t.Fatal("405 without Allow")
	}
	expect(t, s, "TRACE", "/a", "", http.StatusMethodNotAllowed, "")
}

func TestServer_Deadline(t *testing.T) {
	release := make(chan struct{})
	s := start(t, func(s *ooo.Server) {
		s.Deadline = 50 * time.Millisecond
		s.WriteFilter("slow", func(k string, data json.RawMessage) (json.RawMessage, error) {
			<-release
			return data, nil
		})
	})
	defer close(release)
	expect(t, s, "POST", "/slow", `1`, http.StatusServiceUnavailable, "ooo: server deadline reached")
	expect(t, s, "POST", "/fast", `1`, http.StatusOK, "")
}

func TestServer_Gzip(t *testing.T) {
	s := start(t, nil)
	for i := 0; i < 30; i++ {
		expect(t, s, "POST", "/z/*", `{"text":"`+strings.Repeat("z", 100)+`"}`, http.StatusOK, "")
	}
	req, err := http.NewRequest("GET", "http://"+s.Address+"/z/*", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding = %q, want gzip", res.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeList(t, string(body)); len(got) != 30 {
		t.Fatalf("gzip list has %d items", len(got))
	}
	req.Header.Set("Accept-Encoding", "gzip;q=0")
	plain, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if plain.Header.Get("Content-Encoding") != "" {
		t.Fatal("compressed although the client refused gzip")
	}
}

func TestServer_UserRoutesBeforeStartWin(t *testing.T) {
	s := start(t, func(s *ooo.Server) {
		s.Router = nil
		s.Storage = nil
	})
	// A zero Server got a router and a storage.
	if s.Router == nil || s.Storage == nil || s.Client == nil {
		t.Fatal("defaults not filled in")
	}
	srv := start(t, func(srv *ooo.Server) {
		srv.Router = newRouterWith("/custom", "mine")
	})
	expect(t, srv, "GET", "/custom", "", http.StatusOK, "mine")
	expect(t, srv, "POST", "/custom", `1`, http.StatusOK, "mine")
	expect(t, srv, "GET", "/other", "", http.StatusNotFound, ooo.ErrEmptyKey.Error())
}

func TestServer_ErrorsAreSentinels(t *testing.T) {
	if !errors.Is(ooo.ErrNotFound, ooo.ErrNotFound) || ooo.ErrNotFound.Error() != "ooo: not found" {
		t.Fatal("ErrNotFound text changed")
	}
}

func TestServer_HeadAndUncleanPathOfAUserRoute(t *testing.T) {
	s := start(t, func(s *ooo.Server) {
		s.Router = mux.NewRouter()
		s.Router.PathPrefix("/files/").HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("file " + r.URL.Path))
		})
	})
	expect(t, s, "POST", "/h", `{"a":1}`, http.StatusOK, "")
	res := expect(t, s, "HEAD", "/h", "", http.StatusOK, "")
	if res.body != "" || res.header.Get("Content-Length") == "" {
		t.Fatalf("HEAD = %q %v", res.body, res.header)
	}
	expect(t, s, "HEAD", "/missing", "", http.StatusNotFound, "")
	// A path the user's route claims keeps the router's own cleaning (a redirect that
	// the client follows); the same shape outside user routes is an invalid key.
	expect(t, s, "GET", "/files//x", "", http.StatusOK, "file /files/x")
	expect(t, s, "GET", "/other//x", "", http.StatusBadRequest, ooo.ErrInvalidKey.Error())
}
