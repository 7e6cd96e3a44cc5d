package pivot_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/stretchr/testify/require"
)

// call makes one request to a pivot route of in, signed as a peer of the cluster
// would sign it, with headers overriding what it says (an empty value removes a
// header). A sender's name (HeaderNode) is signed; every other override comes after
// signing.
func call(t testing.TB, in *instance, method, route string, query url.Values, body string, headers map[string]string) (int, string) {
	t.Helper()
	u := "http://" + in.addr + pivot.DefaultRoutePrefix + route
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(t, err)
	override := func(proof bool) {
		for k, v := range headers {
			if isProof := k == pivot.HeaderSignature || k == pivot.HeaderTime || k == pivot.HeaderNonce; isProof != proof {
				continue
			}
			if v == "" {
				req.Header.Del(k)
			} else {
				req.Header.Set(k, v)
			}
		}
	}
	require.NoError(t, pivot.SignRequest(req, []byte(body), in.config))
	override(false)
	if _, named := headers[pivot.HeaderNode]; named { // the proof covers the sender's name
		require.NoError(t, pivot.SignRequest(req, []byte(body), in.config))
		override(false)
	}
	override(true) // a proof changed after signing
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// applyBody encodes entries as a push body.
func applyBody(t testing.TB, entries ...storage.Entry) string {
	t.Helper()
	// As a peer sends it: data byte for byte, never HTML-escaped (json.Marshal would
	// turn '<' into \u003c, another value under the same version).
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(map[string]any{"entries": entries}))
	return strings.TrimSuffix(b.String(), "\n")
}

func TestRoutes_RefuseBadRequestsAndChangeNothing(t *testing.T) {
	p := startInstance(t, "pivot", memoryKind.make(t), "", "", testConfig())
	set(t, p, "users/existing", `"x"`)
	now := time.Now().UnixNano()
	good := applyBody(t, storage.Entry{Key: "users/new", Created: now, Data: json.RawMessage(`"new"`)})
	usersKey := url.Values{"key": {"users/*"}}
	huge := applyBody(t, storage.Entry{Key: "users/big", Created: now, Data: json.RawMessage(`"` + strings.Repeat("a", pivot.DefaultMaxBodyBytes) + `"`)})

	cases := []struct {
		name    string
		method  string
		route   string
		query   url.Values
		body    string
		headers map[string]string
		status  int
	}{
		{"no proof", "POST", "/apply", usersKey, good, map[string]string{pivot.HeaderSignature: ""}, 401},
		{"forged proof on status", "GET", "/status", nil, "", map[string]string{pivot.HeaderSignature: strings.Repeat("ab", 32)}, 401},
		{"missing version", "POST", "/apply", usersKey, good, map[string]string{pivot.HeaderVersion: ""}, 400},
		{"other version", "POST", "/apply", usersKey, good, map[string]string{pivot.HeaderVersion: "99"}, 409},
		{"other cluster", "POST", "/apply", usersKey, good, map[string]string{pivot.HeaderCluster: "other"}, 409},
		{"missing cluster", "GET", "/changes", usersKey, "", map[string]string{pivot.HeaderCluster: ""}, 409},
		{"oversized body", "POST", "/apply", usersKey, huge, nil, 413},
		{"malformed body", "POST", "/apply", usersKey, `{"entries":[`, nil, 400},
		{"trailing garbage", "POST", "/apply", usersKey, good + "x", nil, 400},
		{"unknown field", "POST", "/apply", usersKey, `{"entries":[],"extra":1}`, nil, 400},
		{"no key", "POST", "/apply", nil, good, nil, 400},
		{"unsynced key", "POST", "/apply", url.Values{"key": {"secrets/*"}}, good, nil, 404},
		{"entry outside the key", "POST", "/apply", usersKey, applyBody(t, storage.Entry{Key: "settings", Created: now, Data: json.RawMessage(`1`)}), nil, 400},
		{"glob entry", "POST", "/apply", usersKey, applyBody(t, storage.Entry{Key: "users/*", Created: now, Data: json.RawMessage(`1`)}), nil, 400},
		{"entry without stamp", "POST", "/apply", usersKey, applyBody(t, storage.Entry{Key: "users/z", Data: json.RawMessage(`1`)}), nil, 400},
		{"live entry without data", "POST", "/apply", usersKey, `{"entries":[{"key":"users/z","created":5}]}`, nil, 400},
		{"tombstone with data", "POST", "/apply", usersKey, `{"entries":[{"key":"users/z","updated":5,"deleted":true,"data":1}]}`, nil, 400},
		{"good entry before a bad one", "POST", "/apply", usersKey, applyBody(t,
			storage.Entry{Key: "users/new", Created: now, Data: json.RawMessage(`"new"`)},
			storage.Entry{Key: "users/new2", Created: -1, Data: json.RawMessage(`1`)}), nil, 400},
		{"duplicate entry", "POST", "/apply", usersKey, applyBody(t,
			storage.Entry{Key: "users/new", Created: now, Data: json.RawMessage(`"new"`)},
			storage.Entry{Key: "users/new", Created: now + 1, Data: json.RawMessage(`"new"`)}), nil, 400},
		{"wrong method", "GET", "/apply", usersKey, "", nil, 405},
		{"unknown route", "GET", "/nope", nil, "", nil, 404},
		{"bad since", "GET", "/changes", url.Values{"key": {"users/*"}, "since": {"-1"}}, "", nil, 400},
		{"bad limit", "GET", "/changes", url.Values{"key": {"users/*"}, "limit": {"0"}}, "", nil, 400},
		{"huge limit", "GET", "/changes", url.Values{"key": {"users/*"}, "limit": {"99999999"}}, "", nil, 400},
		{"trigger on the pivot", "POST", "/trigger", nil, `{"keys":[]}`, nil, 409},
	}
	before := state(t, p.db, syncedPaths, false)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, p, tc.method, tc.route, tc.query, tc.body, tc.headers)
			require.Equal(t, tc.status, status, "answer %s", body)
			var eb struct {
				Error string `json:"error"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &eb), "error body %q", body)
			require.True(t, eb.Error != "", "error message in %s", body)
			require.True(t, !strings.Contains(body, p.config.Token), "the token never appears in an answer")
			require.Equal(t, fmt.Sprint(before), fmt.Sprint(state(t, p.db, syncedPaths, false)), "nothing changed")
		})
	}

	status, body := call(t, p, "POST", "/apply", usersKey, good, nil)
	require.Equal(t, 200, status, body)
	require.Equal(t, `"new"`, get(t, p, "users/new"))
}

func TestRoutes_NodeRefusesPivotRoutes(t *testing.T) {
	c := startCluster(t, memoryKind, 1, testConfig())
	node := c.nodes[0]
	status, body := call(t, node, "GET", "/changes", url.Values{"key": {"users/*"}}, "", nil)
	require.Equal(t, 409, status, body)
	status, body = call(t, node, "POST", "/trigger", nil, `{"keys":["nope/*"]}`, nil)
	require.Equal(t, 400, status, body)
	status, body = call(t, node, "POST", "/trigger", nil, `{"keys":["users/*"]}`, nil)
	require.Equal(t, 202, status, body)
}

func TestApply_RefusesEntriesFromTheFuturePerEntry(t *testing.T) {
	p := startInstance(t, "pivot", memoryKind.make(t), "", "", testConfig())
	now := time.Now().UnixNano()
	future := now + int64(time.Hour)
	status, body := call(t, p, "POST", "/apply", url.Values{"key": {"users/*"}}, applyBody(t,
		storage.Entry{Key: "users/future", Created: future, Data: json.RawMessage(`"from the future"`)},
		storage.Entry{Key: "users/present", Created: now, Data: json.RawMessage(`"now"`)},
	), nil)
	require.Equal(t, 200, status, body)
	var resp struct {
		Applied int `json:"applied"`
		Refused []struct {
			Key string `json:"key"`
		} `json:"refused"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.Equal(t, 1, resp.Applied, body)
	require.Equal(t, 1, len(resp.Refused), body)
	require.Equal(t, "users/future", resp.Refused[0].Key)
	require.Equal(t, `"now"`, get(t, p, "users/present"))
	require.Equal(t, "", get(t, p, "users/future"))
	require.True(t, p.result.Status().Refused == 1, "refusal counted")
}

func TestRoutes_StatusReportsRoleAndNodes(t *testing.T) {
	c := startCluster(t, memoryKind, 2, testConfig())
	set(t, c.pivot, "users/x", `1`)
	waitConverged(t, c.all(), false)
	status, body := call(t, c.pivot, "GET", "/status", nil, "", nil)
	require.Equal(t, 200, status, body)
	var st pivot.Status
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Equal(t, pivot.RolePivot, st.Role)
	require.Equal(t, 2, len(st.Nodes), body)
	eventually(t, waitTimeout, func() bool {
		for _, n := range c.pivot.result.Status().Nodes {
			if !n.Healthy || n.LastContact.IsZero() {
				return false
			}
		}
		return true
	}, "both nodes healthy and contacted")
	require.True(t, !bytes.Contains([]byte(body), []byte(c.pivot.config.Token)), "status never shows the token")
}
