package ooo_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/benitogf/pivot/ooo"
)

func TestServer_WriteFilter(t *testing.T) {
	s := start(t, func(s *ooo.Server) {
		s.WriteFilter("w/*", func(k string, data json.RawMessage) (json.RawMessage, error) {
			if strings.Contains(string(data), "bad") {
				return nil, errors.New("bad data")
			}
			return json.RawMessage(`{"filtered":` + string(data) + `}`), nil
		})
		s.WriteFilter("w/*", func(string, json.RawMessage) (json.RawMessage, error) {
			return nil, errors.New("second filter must never run")
		})
		s.WriteFilter("junk", func(string, json.RawMessage) (json.RawMessage, error) {
			return json.RawMessage(`{not json`), nil
		})
	})
	expect(t, s, "POST", "/w/1", `"bad"`, http.StatusBadRequest, "bad data")
	expect(t, s, "POST", "/w/1", `1`, http.StatusOK, "")
	obj := decodeObject(t, expect(t, s, "GET", "/w/1", "", http.StatusOK, "").body)
	if canonical(obj.Data) != `{"filtered":1}` {
		t.Fatalf("stored %s", obj.Data)
	}
	expect(t, s, "POST", "/junk", `1`, http.StatusBadRequest, "")
	expect(t, s, "GET", "/junk", "", http.StatusNotFound, "")
}

func TestServer_ReadFilter(t *testing.T) {
	s := start(t, func(s *ooo.Server) {
		s.ReadFilter("r/*", func(k string, data json.RawMessage) (json.RawMessage, error) {
			if k == "r/secret" {
				return nil, errors.New("hidden")
			}
			return json.RawMessage(`{"seen":"` + k + `"}`), nil
		})
	})
	expect(t, s, "POST", "/r/1", `1`, http.StatusOK, "")
	expect(t, s, "POST", "/r/secret", `1`, http.StatusOK, "")
	expect(t, s, "GET", "/r/1", "", http.StatusOK, `{"seen":"r/1"}`)
	expect(t, s, "GET", "/r/*", "", http.StatusOK, `{"seen":"r/*"}`) // a list filter gets the list key
	expect(t, s, "GET", "/r/secret", "", http.StatusBadRequest, "hidden")
	// With a read filter, a missing key is still 404 (upstream answers 200 and {}).
	expect(t, s, "GET", "/r/missing", "", http.StatusNotFound, ooo.ErrEmptyKey.Error())
}

func TestServer_DeleteFilterAndAfterWrite(t *testing.T) {
	var mu sync.Mutex
	var written []string
	s := start(t, func(s *ooo.Server) {
		s.DeleteFilter("keep", func(string) error { return errors.New("kept") })
		s.AfterWrite("a/*", func(k string) {
			mu.Lock()
			written = append(written, k)
			mu.Unlock()
		})
	})
	expect(t, s, "POST", "/keep", `1`, http.StatusOK, "")
	expect(t, s, "DELETE", "/keep", "", http.StatusBadRequest, "kept")
	expect(t, s, "GET", "/keep", "", http.StatusOK, "")
	res := expect(t, s, "POST", "/a/*", `1`, http.StatusOK, "")
	var out struct{ Index string }
	if err := json.Unmarshal([]byte(res.body), &out); err != nil {
		t.Fatal(err)
	}
	expect(t, s, "PUT", "/a/x", `{"b":0}`, http.StatusOK, "")
	expect(t, s, "PATCH", "/a/x", `{"b":1}`, http.StatusOK, "")
	expect(t, s, "PATCH", "/a/x", `{"b":1}`, http.StatusConflict, "") // no change: no hook
	expect(t, s, "POST", "/b/x", `1`, http.StatusOK, "")
	mu.Lock()
	defer mu.Unlock()
	if len(written) != 3 || written[0] != "a/"+out.Index || written[1] != "a/x" || written[2] != "a/x" {
		t.Fatalf("AfterWrite saw %v", written)
	}
}

func TestServer_Static(t *testing.T) {
	s := start(t, func(s *ooo.Server) {
		s.Static = true
		s.OpenFilter("open/*")
		s.ReadFilter("ro", ooo.NoopFilter)
	})
	notDefined := ooo.ErrRouteNotDefined.Error()
	expect(t, s, "POST", "/closed", `1`, http.StatusBadRequest, notDefined+", key:closed")
	expect(t, s, "GET", "/closed", "", http.StatusBadRequest, notDefined+", key:closed")
	expect(t, s, "DELETE", "/closed", "", http.StatusBadRequest, notDefined+", key:closed")
	if _, res, err := trySubscribe(t, s, "/closed", nil); err == nil || res == nil || res.StatusCode != http.StatusBadRequest {
		t.Fatalf("static subscription to an unfiltered key: %v, want 400", err)
	}
	expect(t, s, "POST", "/ro", `1`, http.StatusBadRequest, notDefined+", key:ro")
	expect(t, s, "POST", "/open/*", `{"a":1}`, http.StatusOK, "")
	if list := decodeList(t, expect(t, s, "GET", "/open/*", "", http.StatusOK, "").body); len(list) != 1 {
		t.Fatalf("list = %v", list)
	}
	expect(t, s, "DELETE", "/open/*", "", http.StatusNoContent, "")
	sub := subscribe(t, s, "/open/*", nil)
	sub.WaitState(`[]`)
}

func TestServer_Audit(t *testing.T) {
	s := start(t, func(s *ooo.Server) {
		s.Audit = func(r *http.Request) bool {
			if r.Header.Get("Authorization") == "Bearer ok" {
				return true
			}
			return r.Header.Get("Sec-WebSocket-Protocol") == "bearer, ok"
		}
	})
	denied := ooo.ErrNotAuthorized.Error()
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/", ""}, {"GET", "/a", ""}, {"GET", "/a/*", ""}, {"POST", "/a", "1"},
		{"POST", "/a/*", "1"}, {"PUT", "/a", "1"}, {"PATCH", "/a", `{"b":1}`}, {"DELETE", "/a", ""},
	} {
		expect(t, s, tc.method, tc.path, tc.body, http.StatusUnauthorized, denied)
	}
	if n := len(stored(t, s, "*")); n != 2 { // "[]": nothing was written
		t.Fatalf("unauthorized writes stored something")
	}
	for _, p := range []string{"/a", "/"} {
		if _, res, err := trySubscribe(t, s, p, nil); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unauthorized subscription to %s: %v", p, err)
		}
	}
	ok := http.Header{"Authorization": {"Bearer ok"}}
	if res := do(t, s, "POST", "/a", `{"b":1}`, ok); res.status != http.StatusOK {
		t.Fatalf("authorized POST = %d %s", res.status, res.body)
	}
	sub := subscribe(t, s, "/a", http.Header{"Sec-WebSocket-Protocol": {"bearer, ok"}})
	if sub.WS.Subprotocol() != "bearer" {
		t.Fatalf("subprotocol %q, want bearer", sub.WS.Subprotocol())
	}
	sub.WaitFrames(1)
	clock := subscribe(t, s, "/", http.Header{"Sec-WebSocket-Protocol": {"bearer, ok"}})
	clock.WaitFrames(1)
}

func TestServer_CORS(t *testing.T) {
	s := start(t, func(s *ooo.Server) {
		s.AllowedOrigins = []string{"https://app.example", "https://*.sub.example"}
		s.ExposedHeaders = []string{"X-Total"}
	})
	pre := http.Header{
		"Origin":                         {"https://app.example"},
		"Access-Control-Request-Method":  {"PATCH"},
		"Access-Control-Request-Headers": {"content-type, authorization"},
	}
	res := do(t, s, "OPTIONS", "/a", "", pre)
	if res.status != http.StatusNoContent || res.header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		res.header.Get("Access-Control-Allow-Methods") != "PATCH" || res.header.Get("Access-Control-Allow-Headers") == "" {
		t.Fatalf("preflight = %d %v", res.status, res.header)
	}
	for name, h := range map[string]http.Header{
		"unknown origin": {"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"GET"}},
		"bad method":     {"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"TRACE"}},
		"bad header":     {"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"X-Secret"}},
	} {
		if res := do(t, s, "OPTIONS", "/a", "", h); res.status != http.StatusNoContent || res.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("%s: preflight allowed: %d %v", name, res.status, res.header)
		}
	}
	res = do(t, s, "GET", "/", "", http.Header{"Origin": {"https://x.sub.example"}})
	if res.header.Get("Access-Control-Allow-Origin") != "https://x.sub.example" || res.header.Get("Access-Control-Expose-Headers") != "X-Total" {
		t.Fatalf("actual request headers %v", res.header)
	}
	if res := do(t, s, "GET", "/", "", http.Header{"Origin": {"https://evil.example"}}); res.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("unknown origin allowed")
	}
	if _, res, err := trySubscribe(t, s, "/a", http.Header{"Origin": {"https://evil.example"}}); err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("websocket from an unknown origin: %v", err)
	}
	sub := subscribe(t, s, "/a", http.Header{"Origin": {"https://app.example"}})
	sub.WaitFrames(1)

	open := start(t, nil) // default: any origin
	if res := do(t, open, "GET", "/", "", http.Header{"Origin": {"https://any.example"}}); res.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("default CORS headers %v", res.header)
	}
}
