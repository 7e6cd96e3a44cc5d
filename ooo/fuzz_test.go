package ooo_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/key"
)

func fuzzRequest(tb testing.TB, s *ooo.Server, method string, u *url.URL, body []byte) (int, string, bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, "", false
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(out), true
}

// FuzzServer_Body sends arbitrary bodies to POST and PATCH: the server answers 2xx or
// 4xx (never 5xx), stores exactly the JSON value on success and nothing otherwise.
func FuzzServer_Body(f *testing.F) {
	for _, b := range []string{`{"a":1}`, `[1,2]`, `"x"`, `null`, ``, `{`, `{"a":1}x`, `1 2`, "\xff", `{"a":{"b":[1,{"c":null}]}}`,
		`{"created":1795626763539324221}`, `  true  `, `{"a":"` + string(make([]byte, 300)) + `"}`} {
		f.Add(b, false)
		f.Add(b, true)
	}
	s := &ooo.Server{Silence: true, MaxBodyBytes: 256}
	if err := s.Start("localhost:0"); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close(nil) })
	if _, err := s.Storage.Set("fz", []byte(`{"base":0}`)); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string, patch bool) {
		before, err := s.Storage.Get("fz")
		if err != nil {
			t.Fatal(err)
		}
		method := http.MethodPost
		if patch {
			method = http.MethodPatch
		}
		u := &url.URL{Scheme: "http", Host: s.Address, Path: "/fz"}
		status, msg, sent := fuzzRequest(t, s, method, u, []byte(body))
		if !sent {
			return
		}
		after, err := s.Storage.Get("fz")
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case status >= 500:
			t.Fatalf("%s %q: %d %s", method, body, status, msg)
		case status >= 400:
			if msg == "" {
				t.Fatalf("%s %q: %d without a message", method, body, status)
			}
			if !bytes.Equal(before, after) {
				t.Fatalf("%s %q was refused (%d) but changed the value", method, body, status)
			}
		case !patch:
			obj := decodeObject(t, string(after))
			if canonical(obj.Data) != canonical([]byte(body)) {
				t.Fatalf("POST %q stored %s", body, obj.Data)
			}
		}
	})
}

// FuzzServer_Path sends arbitrary keys: the server never answers 5xx, and a write is
// accepted only for a key that package key accepts.
func FuzzServer_Path(f *testing.F) {
	for _, k := range []string{"a", "ab", "a/b", "a/*", "*", "*/a", "a//b", "a/", "a:b", "a b", "a/./b", "a/../b", "é", "a%2Fb"} {
		f.Add(k)
	}
	s := &ooo.Server{Silence: true}
	if err := s.Start("localhost:0"); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close(nil) })
	f.Fuzz(func(t *testing.T, k string) {
		u := &url.URL{Scheme: "http", Host: s.Address, Path: "/" + k}
		for _, method := range []string{http.MethodPut, http.MethodGet, http.MethodDelete} {
			status, msg, sent := fuzzRequest(t, s, method, u, []byte(`{"v":1}`))
			if !sent {
				return
			}
			if status >= 500 {
				t.Fatalf("%s %q: %d %s", method, k, status, msg)
			}
			if method == http.MethodPut && status == http.StatusOK && (!key.IsValid(k) || key.IsGlob(k)) {
				t.Fatalf("PUT accepted the key %q", k)
			}
		}
	})
}
