package ooo

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/benitogf/pivot/ooo/key"
)

// Apply is a read or write filter: it gets the key and the data on its way in or out
// and returns the data to use instead, or an error that refuses the request (400).
type Apply func(key string, data json.RawMessage) (json.RawMessage, error)

// ApplyDelete is a delete filter: an error refuses the delete (400).
type ApplyDelete func(key string) error

// Notify is a hook called with a key after something happened to it.
type Notify func(key string)

// NoopFilter lets data through unchanged.
func NoopFilter(key string, data json.RawMessage) (json.RawMessage, error) {
	return data, nil
}

// NoopHook allows every delete.
func NoopHook(key string) error {
	return nil
}

// route is one registered filter or hook.
type route[F any] struct {
	path string
	fn   F
}

// filters holds the registered filters and hooks, in registration order.
type filters struct {
	mu    sync.RWMutex
	write []route[Apply]
	read  []route[Apply]
	del   []route[ApplyDelete]
	after []route[Notify]
}

// find returns the first route of the list picked from f whose path equals k or
// glob-matches it.
func find[F any](f *filters, pick func(*filters) []route[F], k string) (F, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, r := range pick(f) {
		if r.path == k || key.Match(r.path, k) {
			return r.fn, true
		}
	}
	var zero F
	return zero, false
}

// WriteFilter registers fn for HTTP POST, PUT and PATCH on keys matching path. Only the
// first registered filter that matches a key runs. It may be called at any time.
func (s *Server) WriteFilter(path string, fn Apply) {
	s.filters.mu.Lock()
	defer s.filters.mu.Unlock()
	s.filters.write = append(s.filters.write, route[Apply]{path, fn})
}

// ReadFilter registers fn for every read that reaches a client of keys matching path:
// HTTP GET, the first websocket message and every broadcast. For a glob, fn gets the
// whole JSON array. Only the first registered filter that matches a key runs.
func (s *Server) ReadFilter(path string, fn Apply) {
	s.filters.mu.Lock()
	defer s.filters.mu.Unlock()
	s.filters.read = append(s.filters.read, route[Apply]{path, fn})
}

// DeleteFilter registers fn for HTTP DELETE of keys matching path (globs included).
func (s *Server) DeleteFilter(path string, fn ApplyDelete) {
	s.filters.mu.Lock()
	defer s.filters.mu.Unlock()
	s.filters.del = append(s.filters.del, route[ApplyDelete]{path, fn})
}

// AfterWrite registers fn to run, on the request goroutine, after a successful HTTP
// POST, PUT or PATCH of a key matching path. POST to a list passes the new key.
func (s *Server) AfterWrite(path string, fn Notify) {
	s.filters.mu.Lock()
	defer s.filters.mu.Unlock()
	s.filters.after = append(s.filters.after, route[Notify]{path, fn})
}

// OpenFilter lets every read, write and delete of keys matching path through, which
// is how a key is opened in Static mode.
func (s *Server) OpenFilter(path string) {
	s.WriteFilter(path, NoopFilter)
	s.ReadFilter(path, NoopFilter)
	s.DeleteFilter(path, NoopHook)
}

// applyFilter runs the first filter of list matching k on data. With no match, data
// passes unless the server is static.
func (s *Server) applyFilter(pick func(*filters) []route[Apply], k string, data json.RawMessage) (json.RawMessage, error) {
	fn, ok := find(&s.filters, pick, k)
	if !ok {
		if s.Static {
			return nil, fmt.Errorf("%w, key:%s", ErrRouteNotDefined, k)
		}
		return data, nil
	}
	out, err := fn(k, data)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 || !json.Valid(out) {
		return nil, fmt.Errorf("%w, key:%s", ErrInvalidFilterResult, k)
	}
	return out, nil
}

func (s *Server) writeFilter(k string, data json.RawMessage) (json.RawMessage, error) {
	return s.applyFilter(writeRoutes, k, data)
}

func (s *Server) readFilter(k string, data json.RawMessage) (json.RawMessage, error) {
	return s.applyFilter(readRoutes, k, data)
}

// canRead reports whether k may be read at all: always, unless the server is static
// and no read filter matches k.
func (s *Server) canRead(k string) error {
	if !s.Static {
		return nil
	}
	if _, ok := find(&s.filters, readRoutes, k); !ok {
		return fmt.Errorf("%w, key:%s", ErrRouteNotDefined, k)
	}
	return nil
}

func (s *Server) deleteFilter(k string) error {
	fn, ok := find(&s.filters, func(f *filters) []route[ApplyDelete] { return f.del }, k)
	if !ok {
		if s.Static {
			return fmt.Errorf("%w, key:%s", ErrRouteNotDefined, k)
		}
		return nil
	}
	return fn(k)
}

func (s *Server) afterWrite(k string) {
	if fn, ok := find(&s.filters, func(f *filters) []route[Notify] { return f.after }, k); ok {
		fn(k)
	}
}

func writeRoutes(f *filters) []route[Apply] { return f.write }

func readRoutes(f *filters) []route[Apply] { return f.read }
