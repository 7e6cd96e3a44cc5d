package ooo_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/meta"
)

// A server on a free loopback port: write a value over HTTP, then read it back.
func Example() {
	server := &ooo.Server{Silence: true}
	if err := server.Start("localhost:0"); err != nil {
		fmt.Println(err)
		return
	}
	defer server.Close(os.Interrupt)

	res, err := http.Post("http://"+server.Address+"/greeting", "application/json", strings.NewReader(`{"hello":"world"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	index, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode, string(index))

	res, err = http.Get("http://" + server.Address + "/greeting")
	if err != nil {
		fmt.Println(err)
		return
	}
	obj, err := meta.DecodeFromReader(res.Body)
	res.Body.Close()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.StatusCode, obj.Path, string(obj.Data))
	// Output:
	// 200 {"index":"greeting"}
	// 200 greeting {"hello":"world"}
}

// In Static mode a server serves only the keys a filter was registered for; OpenFilter
// opens a key or glob for reads, writes and deletes.
func ExampleServer_OpenFilter() {
	server := &ooo.Server{Silence: true, Static: true}
	server.OpenFilter("public/*")
	if err := server.Start("localhost:0"); err != nil {
		fmt.Println(err)
		return
	}
	defer server.Close(os.Interrupt)

	for _, path := range []string{"/public/a", "/private/a"} {
		res, err := http.Post("http://"+server.Address+path, "application/json", strings.NewReader(`1`))
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Println(path, res.StatusCode, strings.TrimSpace(string(body)))
	}
	// Output:
	// /public/a 200 {"index":"a"}
	// /private/a 400 ooo: route not defined, static mode, key:private/a
}
