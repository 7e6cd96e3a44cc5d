package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/gorilla/mux"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
)

// Book is a value under books/<index>: a book needs a title, and a draft is hidden
// from list reads.
type Book struct {
	Title  string `json:"title"`
	Author string `json:"author,omitempty"`
	Draft  bool   `json:"draft,omitempty"`
}

// Note is a value under notes/<index>; notes are open to every authorised client.
type Note struct {
	Text string `json:"text"`
}

// Errors the library's filters answer with; over HTTP they come back as a 400 whose
// body is their text.
var (
	// errNoTitle: a book written without a title.
	errNoTitle = errors.New("compat: a book needs a title")
	// errKept: a delete of books/kept, which is never deleted.
	errKept = errors.New("compat: books/kept is never deleted")
)

// errPrivate: a websocket subscription to notes/private, which OnSubscribe refuses.
var errPrivate = errors.New("compat: notes/private has no subscribers")

// Keys with a fixed role in the library.
const (
	keptBook    = "books/kept"     // the delete filter refuses to delete it
	featured    = "books/featured" // a route of the program's own, not a stored key
	privateNote = "notes/private"  // cannot be subscribed to
	cacheGlob   = "cache/*"        // writes here raise no storage event (NoBroadcastKeys)
)

// featuredBook is what GET /books/featured answers.
var featuredBook = Book{Title: "Featured", Author: "The library"}

// library is the program's server with the records its hooks keep, so the tests can
// see what ran.
type library struct {
	server   *ooo.Server
	token    string
	written  recorder // keys AfterWrite was called with
	events   recorder // "<operation> <key>" of every OnStorageEvent
	reads    recorder // keys BeforeRead was called with
	unsubbed recorder // keys OnUnsubscribe was called with
}

// newLibrary sets up a static-mode server on db: books/* with a write filter (a title
// is required), a read filter (drafts are left out of lists), a delete filter
// (books/kept stays) and an AfterWrite hook; notes/* open; every route behind a bearer
// token; a route of its own at books/featured, added before Start so that it wins over
// ooo's key routes; no websocket subscriptions to notes/private; no storage events for
// cache/*. It does not start the server.
func newLibrary(token string, db ooo.Database) *library {
	l := &library{token: token}
	router := mux.NewRouter()
	router.HandleFunc("/"+featured, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(featuredBook)
	}).Methods(http.MethodGet)
	l.server = &ooo.Server{
		Router:          router,
		Silence:         true,
		Static:          true,
		Storage:         db,
		NoBroadcastKeys: []string{cacheGlob},
		Audit:           l.audit,
		OnSubscribe: func(k string) error {
			if k == privateNote {
				return errPrivate
			}
			return nil
		},
		OnUnsubscribe: l.unsubbed.add,
		OnStorageEvent: ooo.StorageEventCallback(func(ev ooo.StorageEvent) {
			l.events.add(ev.Operation + " " + ev.Key)
		}),
		BeforeRead: l.reads.add,
	}
	l.server.WriteFilter("books/*", checkBook)
	l.server.ReadFilter("books/*", hideDrafts)
	l.server.DeleteFilter("books/*", func(k string) error {
		if k == keptBook {
			return errKept
		}
		return nil
	})
	l.server.AfterWrite("books/*", l.written.add)
	l.server.OpenFilter("notes/*")
	return l
}

// audit lets a request through when it carries "Authorization: Bearer <token>".
func (l *library) audit(r *http.Request) bool {
	return r.Header.Get("Authorization") == "Bearer "+l.token
}

// header is what a client of the library sends to pass audit.
func (l *library) header() http.Header {
	return http.Header{"Authorization": {"Bearer " + l.token}}
}

// checkBook is the books/* write filter: the data must be a Book with a title. It
// stores the data as it came.
func checkBook(k string, data json.RawMessage) (json.RawMessage, error) {
	var b Book
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("compat: %s is not a book: %w", k, err)
	}
	if b.Title == "" {
		return nil, errNoTitle
	}
	return data, nil
}

// hideDrafts is the books/* read filter. A list read (books/*) gets the whole array,
// from which drafts are removed; a single book is served as it is.
func hideDrafts(k string, data json.RawMessage) (json.RawMessage, error) {
	if key.LastIndex(k) != "*" {
		return data, nil
	}
	list, err := meta.DecodeList(data)
	if err != nil {
		return nil, fmt.Errorf("compat: read %s: %w", k, err)
	}
	kept := []meta.Object{}
	for _, o := range list {
		var b Book
		if json.Unmarshal(o.Data, &b) == nil && b.Draft {
			continue
		}
		kept = append(kept, o)
	}
	return json.Marshal(kept)
}

// recorder keeps the strings a hook was called with, for hooks that run on the
// server's goroutines.
type recorder struct {
	mu    sync.Mutex
	items []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, s)
}

// has reports whether s was recorded.
func (r *recorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, item := range r.items {
		if item == s {
			return true
		}
	}
	return false
}
