package client_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/client"
	oio "github.com/benitogf/pivot/ooo/io"
	"github.com/benitogf/pivot/ooo/storage"
)

func ExampleSubscribe() {
	server := &ooo.Server{Silence: true, Storage: &storage.MemoryStorage{}}
	if err := server.Start("127.0.0.1:0"); err != nil {
		fmt.Println(err)
		return
	}
	defer server.Close(os.Interrupt)

	type Todo struct {
		Title string `json:"title"`
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	states := make(chan []client.Meta[Todo])
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Blocks until ctx is cancelled; one callback per message.
		client.Subscribe(ctx, "ws", server.Address, "todos/*", nil, func(todos []client.Meta[Todo]) {
			select {
			case states <- todos:
			case <-ctx.Done():
			}
		})
	}()

	next := func() []client.Meta[Todo] {
		select {
		case todos := <-states:
			return todos
		case <-time.After(5 * time.Second):
			panic("no message from the server")
		}
	}
	fmt.Println("todos:", len(next())) // the first snapshot: an empty list
	if _, err := oio.Push(server, "todos/*", Todo{Title: "write docs"}); err != nil {
		fmt.Println(err)
		return
	}
	todos := next()
	fmt.Println("todos:", len(todos), todos[0].Data.Title)

	cancel() // Subscribe closes its connection and returns
	<-done
	// Output:
	// todos: 0
	// todos: 1 write docs
}
