package ooo_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo"
)

// BenchmarkServer_GetList measures GET of a list over real HTTP (keep-alive).
func BenchmarkServer_GetList(b *testing.B) {
	for _, items := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("items=%d", items), func(b *testing.B) {
			s := start(b, nil)
			for i := 0; i < items; i++ {
				if _, err := s.Storage.Set(fmt.Sprintf("list/%d", i), []byte(`{"name":"item","n":1,"tags":["a","b"]}`)); err != nil {
					b.Fatal(err)
				}
			}
			client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			url := "http://" + s.Address + "/list/*"
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Fatalf("status %d", res.StatusCode)
				}
				b.SetBytes(n)
			}
		})
	}
}

// counter is a lean websocket subscriber for benchmarks: it signals every frame.
type counter struct {
	ws     *websocket.Conn
	frames chan struct{}
}

func newCounter(tb testing.TB, s *ooo.Server, path string) *counter {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+s.Address+path, nil)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	c := &counter{ws: ws, frames: make(chan struct{}, 1<<16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := ws.NextReader(); err != nil {
				return
			}
			c.frames <- struct{}{}
		}
	}()
	tb.Cleanup(func() {
		_ = ws.Close()
		<-done
	})
	return c
}

func (c *counter) wait(tb testing.TB) {
	select {
	case <-c.frames:
	case <-time.After(30 * time.Second):
		tb.Fatal("subscriber got no frame")
	}
}

// BenchmarkServer_Broadcast measures one write reaching every subscriber of its key:
// each iteration stores a new value and waits until all subscribers received the patch.
func BenchmarkServer_Broadcast(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			s := start(b, nil)
			text := strings.Repeat("t", 200)
			if _, err := s.Storage.Set("bench", []byte(`{"n":0,"text":"`+text+`"}`)); err != nil {
				b.Fatal(err)
			}
			subs := make([]*counter, n)
			for i := range subs {
				subs[i] = newCounter(b, s, "/bench")
				subs[i].wait(b) // the first snapshot
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Storage.Set("bench", []byte(fmt.Sprintf(`{"n":%d,"text":"%s"}`, i+1, text))); err != nil {
					b.Fatal(err)
				}
				for _, c := range subs {
					c.wait(b)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
		})
	}
}
