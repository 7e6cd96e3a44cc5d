package pivot

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot/internal/testcert"
)

// signedAt returns a request to route signed with secret at time at.
func signedAt(t *testing.T, secret string, at time.Time, body string) *http.Request {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/~pivot/apply?key=users%2F%2A", strings.NewReader(body))
	req.Header.Set(HeaderCluster, "c")
	signRequest(req, routeApply, []byte(body), []byte(secret), at)
	return req
}

func TestVerifier_WindowReplayAndRotation(t *testing.T) {
	now := time.Now()
	v := &verifier{keys: newKeyring(Config{Token: "current", PreviousToken: "previous", TokenOverlap: time.Minute}, now)}
	check := func(req *http.Request, at time.Time, body string) string {
		t.Helper()
		if _, err := v.verify(req, routeApply, []byte(body), at); err != nil {
			return err.msg
		}
		return ""
	}
	if msg := check(signedAt(t, "current", now, "b"), now, "b"); msg != "" {
		t.Fatalf("a fresh request is refused: %s", msg)
	}
	if msg := check(signedAt(t, "previous", now, "b"), now, "b"); msg != "" {
		t.Fatalf("the previous secret during its overlap is refused: %s", msg)
	}
	later := now.Add(2 * time.Minute)
	if msg := check(signedAt(t, "previous", later, "b"), later, "b"); !strings.Contains(msg, "retired") {
		t.Fatalf("the previous secret after its overlap: %q", msg)
	}
	if msg := check(signedAt(t, "current", now.Add(-proofWindow-time.Second), "b"), now, "b"); !strings.Contains(msg, "clock") {
		t.Fatalf("a request signed too long ago: %q", msg)
	}
	if msg := check(signedAt(t, "current", now.Add(proofWindow+time.Second), "b"), now, "b"); !strings.Contains(msg, "clock") {
		t.Fatalf("a request signed in the future: %q", msg)
	}
	req := signedAt(t, "current", now, "b")
	if msg := check(req, now, "b"); msg != "" {
		t.Fatal(msg)
	}
	// Replayed as late as the window allows, across a generation of the cache.
	if msg := check(req, now.Add(proofWindow-time.Second), "b"); !strings.Contains(msg, "replayed") {
		t.Fatalf("a replay at the edge of the window: %q", msg)
	}
	if msg := check(signedAt(t, "current", now, "b"), now, "other body"); !strings.Contains(msg, "does not match") {
		t.Fatalf("another body: %q", msg)
	}
	bad := signedAt(t, "current", now, "b")
	bad.Header.Set(HeaderTime, strconv.FormatInt(now.Add(time.Second).UnixMilli(), 10))
	if msg := check(bad, now, "b"); !strings.Contains(msg, "does not match") {
		t.Fatalf("a time changed after signing: %q", msg)
	}
}

func TestKeyring_RotateKeepsThePreviousForTheOverlap(t *testing.T) {
	now := time.Now()
	k := newKeyring(Config{Token: "one", TokenOverlap: time.Minute}, now)
	if got := len(k.secrets(now)); got != 1 {
		t.Fatalf("%d secrets before a rotation", got)
	}
	k.rotate("two", now)
	s := k.secrets(now.Add(30 * time.Second))
	if len(s) != 2 || string(s[0]) != "two" || string(s[1]) != "one" {
		t.Fatalf("during the overlap: %q", s)
	}
	if s := k.secrets(now.Add(2 * time.Minute)); len(s) != 1 || string(s[0]) != "two" {
		t.Fatalf("after the overlap: %q", s)
	}
	if newKeyring(Config{}, now) != nil || newKeyring(Config{}, now).secrets(now) != nil {
		t.Fatal("no Token: no keyring, nothing signed")
	}
}

func TestNonceCache_ForgetsOnlyAfterTheWindowAndRefusesWhenFull(t *testing.T) {
	var c nonceCache
	now := time.Now()
	if c.add("a", now) != nonceFresh || c.add("a", now) != nonceReplayed {
		t.Fatal("a nonce is accepted once")
	}
	if c.add("a", now.Add(3*proofWindow)) != nonceReplayed {
		t.Fatal("forgotten while a replay could still be in its window")
	}
	if c.add("a", now.Add(7*proofWindow)) != nonceFresh {
		t.Fatal("kept long after every window closed")
	}
	c.cur = make(map[string]struct{}, maxNonces)
	for i := range maxNonces {
		c.cur[strconv.Itoa(i)] = struct{}{}
	}
	if c.add("new", now.Add(7*proofWindow)) != nonceFull {
		t.Fatal("a full cache must refuse, not forget")
	}
}

func TestCertNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"127.0.0.1:8080", true},
		{"https://127.0.0.1:8443", true},
		{"10.0.0.1:8080", false},
		{"localhost:8080", false},
		{"no-port", false},
	} {
		if got := certNames(loopbackCert(t), tc.name); got != tc.want {
			t.Errorf("certNames(%q) = %v", tc.name, got)
		}
	}
}

// loopbackCert is a certificate naming 127.0.0.1.
func loopbackCert(t *testing.T) *x509.Certificate {
	t.Helper()
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Leaf
}

// A proof signed before the verifier started may be a replay of a request accepted
// before a restart (the nonces are in memory): it is refused.
func TestVerifier_RefusesProofsFromBeforeItStarted(t *testing.T) {
	now := time.Now()
	v := &verifier{keys: newKeyring(Config{Token: "current"}, now), since: now}
	req := signedAt(t, "current", now.Add(-time.Second), "b")
	if _, err := v.verify(req, routeApply, []byte("b"), now); err == nil || !strings.Contains(err.msg, "before this instance started") {
		t.Fatalf("a proof from before the start: %+v", err)
	}
	if _, err := v.verify(signedAt(t, "current", now, "b"), routeApply, []byte("b"), now); err != nil {
		t.Fatalf("a fresh proof: %s", err.msg)
	}
}
