package pivot

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkAuth measures what authentication adds to one protocol exchange, for bodies
// of a trigger's size up to a full batch: signing the request, verifying it (the HMAC,
// the window and the replay cache), and signing and verifying the answer of the same
// size. The per-request cost in µs is ns/op / 1000.
func BenchmarkAuth(b *testing.B) {
	secret := []byte("bench-secret-0123456789")
	for _, size := range []int{100, 4 << 10, 64 << 10, 1 << 20} {
		body := bytes.Repeat([]byte("x"), size)
		b.Run(fmt.Sprintf("body=%dB", size), func(b *testing.B) {
			v := &verifier{keys: newKeyring(Config{Token: string(secret)}, time.Now())}
			b.SetBytes(int64(2 * size))
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/~pivot/apply?key=users%2F%2A", nil)
				req.Header.Set(HeaderCluster, "bench")
				now := time.Now()
				sig := signRequest(req, routeApply, body, secret, now)
				got, err := v.verify(req, routeApply, body, now)
				if err != nil {
					b.Fatal(err.msg)
				}
				h := http.Header{}
				h.Set(HeaderSignature, fmt.Sprintf("%x", answerMAC(got, sig, http.StatusOK, body)))
				if !answerValid(secret, sig, http.StatusOK, h, body) {
					b.Fatal("answer not valid")
				}
			}
		})
	}
}
