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

// register appends a route to the list picked from f.
func register[F any](f *filters, pick func(*filters) *[]route[F], path string, fn F) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := pick(f)
	*list = append(*list, route[F]{path, fn})
}

// lookup is find with the Static rule: when no route of the list matches k, a static
// server refuses k with ErrRouteNotDefined, any other lets it through (ok false).
func lookup[F any](s *Server, pick func(*filters) []route[F], k string) (fn F, ok bool, err error) {
	fn, ok = find(&s.filters, pick, k)
	if !ok && s.Static {
		return fn, false, fmt.Errorf("%w, key:%s", ErrRouteNotDefined, k)
	}
	return fn, ok, nil
}

// WriteFilter registers fn for HTTP POST, PUT and PATCH on keys matching path. Only the
// first registered filter that matches a key runs. It may be called at any time.
func (s *Server) WriteFilter(path string, fn Apply) {
	register(&s.filters, func(f *filters) *[]route[Apply] { return &f.write }, path, fn)
}

// ReadFilter registers fn for every read that reaches a client of keys matching path:
// HTTP GET, the first websocket message and every broadcast. For a glob, fn gets the
// whole JSON array. Only the first registered filter that matches a key runs. It may be
// called at any time.
func (s *Server) ReadFilter(path string, fn Apply) {
	register(&s.filters, func(f *filters) *[]route[Apply] { return &f.read }, path, fn)
}

// DeleteFilter registers fn for HTTP DELETE of keys matching path (globs included).
// Only the first registered filter that matches a key runs. It may be called at any
// time.
func (s *Server) DeleteFilter(path string, fn ApplyDelete) {
	register(&s.filters, func(f *filters) *[]route[ApplyDelete] { return &f.del }, path, fn)
}

// AfterWrite registers fn to run, on the request goroutine, after a successful HTTP
// POST, PUT or PATCH of a key matching path. POST to a list passes the new key. Only
// the first registered hook that matches a key runs. It may be called at any time.
func (s *Server) AfterWrite(path string, fn Notify) {
	register(&s.filters, func(f *filters) *[]route[Notify] { return &f.after }, path, fn)
}

// OpenFilter lets every read, write and delete of keys matching path through, which
// is how a key is opened in Static mode.
func (s *Server) OpenFilter(path string) {
	s.WriteFilter(path, NoopFilter)
	s.ReadFilter(path, NoopFilter)
	s.DeleteFilter(path, NoopHook)
}

// applyFilter runs the first filter of the list picked matching k on data. With no
// match, data passes unless the server is static. A filter's error is returned as it
// is; a result that is not JSON is ErrInvalidFilterResult.
func (s *Server) applyFilter(pick func(*filters) []route[Apply], k string, data json.RawMessage) (json.RawMessage, error) {
	fn, ok, err := lookup(s, pick, k)
	if err != nil || !ok {
		return data, err
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
	_, _, err := lookup(s, readRoutes, k)
	return err
}

// deleteFilter runs the first delete filter matching k (with the Static rule).
func (s *Server) deleteFilter(k string) error {
	fn, ok, err := lookup(s, func(f *filters) []route[ApplyDelete] { return f.del }, k)
	if err != nil || !ok {
		return err
	}
	return fn(k)
}

// afterWrite runs the first AfterWrite hook matching k; hooks are never required.
func (s *Server) afterWrite(k string) {
	if fn, ok := find(&s.filters, func(f *filters) []route[Notify] { return f.after }, k); ok {
		fn(k)
	}
}

func writeRoutes(f *filters) []route[Apply] { return f.write }

func readRoutes(f *filters) []route[Apply] { return f.read }
