package ooo_test

import (
	"net/http"

	"github.com/gorilla/mux"
)

// newRouterWith returns a router with one user route answering body.
func newRouterWith(path, body string) *mux.Router {
	r := mux.NewRouter()
	r.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(body))
	})
	return r
}
