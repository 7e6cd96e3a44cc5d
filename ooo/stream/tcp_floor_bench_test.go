package stream_test

import (
	"bufio"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpFloor is the least a server with one writer goroutine per connection can do to
// deliver one frame to m subscribers on this machine: m loopback TCP connections, each
// with its own writer goroutine, woken by a channel, that sets a write deadline and
// writes the frame's bytes, and readers that read exactly that many bytes. No websocket
// framing, no queue, no pool. BenchmarkWriteToManySubscribers reports it beside the
// stream's figures, measured in the same run, so they can be judged against what the
// machine allows.
type tcpFloor struct {
	writers []chan []byte
	readers []chan *arrivals
}

func newTCPFloor(b *testing.B, m int) *tcpFloor {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	f := &tcpFloor{}
	var conns []net.Conn
	var wg sync.WaitGroup
	b.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
		for i := range f.writers {
			close(f.writers[i])
			close(f.readers[i])
		}
		wg.Wait()
	})
	for i := 0; i < m; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		srv, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, srv)
		writer, reader := make(chan []byte, 1), make(chan *arrivals, 1)
		f.writers, f.readers = append(f.writers, writer), append(f.readers, reader)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for frame := range writer {
				if err := srv.SetWriteDeadline(time.Now().Add(benchWait)); err != nil {
					return
				}
				if _, err := srv.Write(frame); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			r := bufio.NewReader(c)
			buf := make([]byte, 64<<10)
			for to := range reader {
				if _, err := io.ReadFull(r, buf[:to.size]); err != nil {
					return
				}
				to.arrive()
			}
		}()
	}
	return f
}

// deliver sends frame (at most 64 KiB) to every subscriber and returns the arrivals
// to wait on.
func (f *tcpFloor) deliver(frame []byte) *arrivals {
	a := newArrivals(len(f.writers))
	a.size = len(frame)
	for i := range f.writers {
		f.readers[i] <- a
	}
	for i := range f.writers {
		f.writers[i] <- frame
	}
	return a
}
