package ooo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/benitogf/pivot/ooo/storage"
	"github.com/benitogf/pivot/ooo/stream"
)

// Start fills in the defaults, starts the storage, registers ooo's routes on the
// Router (once per Router), listens on addr ("tcp"; "localhost:0" picks a free port on
// 127.0.0.1) and returns once the server accepts connections, with Address set to the
// bound address.
//
// Unlike upstream ooo, Start reports failures (ErrActive, storage or listen errors)
// instead of ending the process; on failure nothing is left running and the storage is
// closed again. A closed Server may be started again.
func (s *Server) Start(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active.Load() {
		return fmt.Errorf("ooo: start %s: %w", addr, ErrActive)
	}
	if err := s.checkSettings(); err != nil {
		return fmt.Errorf("ooo: start %s: %w", addr, err)
	}
	s.defaults()
	log := s.newLogger()
	err := s.Storage.Start(StorageOpt{NoBroadcastKeys: s.NoBroadcastKeys, BeforeRead: s.BeforeRead, DbOpt: s.DbOpt})
	if err != nil {
		return fmt.Errorf("ooo: start storage: %w", err)
	}
	events := s.Storage.Watch()
	if events == nil {
		s.Storage.Close()
		return fmt.Errorf("ooo: start storage: no event channel: %w", ErrNotActive)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.Storage.Close()
		return fmt.Errorf("ooo: listen on %s: %w", addr, err)
	}
	s.Address = ln.Addr().String()
	if s.TLSConfig != nil {
		// HTTP/1.1 only: websocket upgrades need it, and pivot's requests are small.
		tc := s.TLSConfig.Clone()
		if len(tc.NextProtos) == 0 {
			tc.NextProtos = []string{"http/1.1"}
		}
		ln = tls.NewListener(ln, tc)
	}

	s.configureStream(log)
	s.rt.Store(&runtime{
		log:      log,
		maxBody:  s.MaxBodyBytes,
		writes:   http.TimeoutHandler(http.HandlerFunc(s.serveWrite), s.Deadline, deadlineMessage),
		cors:     newCORSPolicy(s.AllowedOrigins, s.AllowedMethods, s.AllowedHeaders, s.ExposedHeaders),
		deadline: s.Deadline,
	})
	s.registerRoutes()
	s.http = &http.Server{
		Handler:           s.rootHandler(),
		ReadTimeout:       s.ReadTimeout,
		WriteTimeout:      s.WriteTimeout,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		IdleTimeout:       s.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s.stop = make(chan struct{})
	srv, stop, tick := s.http, s.stop, s.Tick
	loops := &sync.WaitGroup{}
	s.loops = loops
	loops.Add(3)
	go func() {
		defer loops.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("ooo: serve", "address", ln.Addr().String(), "err", err)
		}
	}()
	go func() {
		defer loops.Done()
		s.dispatch(events, stop)
	}()
	go func() {
		defer loops.Done()
		s.tick(tick, stop)
	}()
	s.active.Store(true)
	log.Info("ooo: listening", "address", s.Address)
	if s.OnStart != nil {
		s.OnStart()
	}
	return nil
}

// configureStream copies the websocket settings into Stream and opens it.
func (s *Server) configureStream(log *slog.Logger) {
	if s.NoPatch && s.ForcePatch {
		log.Error("ooo: both NoPatch and ForcePatch are set; NoPatch wins")
	}
	s.Stream.OnSubscribe = s.OnSubscribe
	s.Stream.OnUnsubscribe = s.OnUnsubscribe
	s.Stream.ForcePatch = s.ForcePatch
	s.Stream.NoPatch = s.NoPatch
	s.Stream.Verbatim = s.streamsVerbatim
	s.Stream.Logger = log
	policy := newCORSPolicy(s.AllowedOrigins, nil, nil, nil)
	s.Stream.CheckOrigin = func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		return origin == "" || sameOrigin(origin, r.Host) || policy.allowOrigin(origin)
	}
	s.Stream.Open()
}

// sameOrigin reports whether a websocket's Origin names the host the request was sent
// to, so that a page served by this server can subscribe whatever AllowedOrigins lists
// (browsers send Origin on every websocket, same-origin ones included). The scheme is
// not compared: behind a TLS-terminating proxy the page is https and the request http.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// dispatch hands every storage event, in order, to the websocket broadcast and then to
// OnStorageEvent, until the channel is closed or stop is. Broadcasts never call
// BeforeRead (see readForBroadcast).
func (s *Server) dispatch(events StorageChan, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case ev, ok := <-events:
			if !ok {
				if s.active.Load() {
					s.logger().Warn("ooo: the storage closed its event channel while the server is active; broadcasts stopped")
				}
				return
			}
			if ev.Key != "" {
				// Pools that re-read do it without BeforeRead (readForBroadcast): the
				// change is already in the storage, and a hook that pulls data before
				// reads must not run once per write per pool on this goroutine.
				change := stream.Change{Key: ev.Key, Deleted: ev.Operation == storage.OpDel, Object: ev.Object}
				s.Stream.BroadcastChange(change, stream.BroadcastOpt{Get: s.readForBroadcast})
			}
			if cb := s.OnStorageEvent; cb != nil {
				cb(ev)
			}
		}
	}
}

// tick sends the time to the clock sockets every interval until stop is closed.
func (s *Server) tick(every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.Stream.BroadcastClock(s.now())
		}
	}
}

// now is the clock socket payload: decimal nanoseconds, never behind the storage's
// hybrid logical clock.
func (s *Server) now() []byte {
	now := time.Now().UnixNano()
	if c := storage.ClockOf(s.Storage); c != nil {
		now = max(now, c.Last())
	}
	return strconv.AppendInt(nil, now, 10)
}

// Close stops the server: websocket clients get a close frame and are disconnected,
// the clock stops, HTTP requests in flight get up to ShutdownTimeout to finish,
// OnClosing runs, the storage is closed, the dispatcher stops, then OnClose runs. sig is only logged (nil
// is fine). Close may be called any number of times, concurrently too; only the first
// call on an active server does something. It never waits longer than a few
// ShutdownTimeouts, even with writes in flight.
func (s *Server) Close(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active.Swap(false) {
		return
	}
	log := s.logger()
	s.Stream.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	if err := s.http.Shutdown(ctx); err != nil {
		log.Warn("ooo: requests still running at shutdown, closing them", "err", err)
		_ = s.http.Close()
	}
	cancel()
	if s.OnClosing != nil {
		s.OnClosing()
	}
	s.Storage.Close()
	close(s.stop)
	done, loops := make(chan struct{}), s.loops
	go func() {
		loops.Wait()
		close(done)
	}()
	timer := time.NewTimer(ShutdownTimeout)
	select {
	case <-done:
	case <-timer.C:
		log.Warn("ooo: event dispatcher still busy after close (slow OnStorageEvent?)")
	}
	timer.Stop()
	if s.OnClose != nil {
		s.OnClose()
	}
	log.Info("ooo: closed", "address", s.Address, "signal", fmt.Sprint(sig))
}

// WaitClose blocks until the process gets SIGINT, SIGTERM or SIGHUP, or until a signal
// is sent on Signal, then closes the server with that signal. It uses Signal when it is
// already set (so the embedding program, or a test, can stop the server through it) and
// otherwise makes it, with a buffer of one. The process-wide signal handlers it
// installs are removed before it returns. Call it at most once per Start.
func (s *Server) WaitClose() {
	ch := s.Signal
	if ch == nil {
		ch = make(chan os.Signal, 1)
		s.Signal = ch
	}
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	sig := <-ch
	signal.Stop(ch)
	s.Close(sig)
}
