package io_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/benitogf/pivot/ooo"
	oio "github.com/benitogf/pivot/ooo/io"
	"github.com/benitogf/pivot/ooo/storage"
)

func Example() {
	server := &ooo.Server{Silence: true, Storage: &storage.MemoryStorage{}}
	if err := server.Start("127.0.0.1:0"); err != nil {
		fmt.Println(err)
		return
	}
	defer server.Close(os.Interrupt)

	type Settings struct {
		Theme string `json:"theme"`
	}
	if err := oio.Set(server, "settings", Settings{Theme: "dark"}); err != nil {
		fmt.Println(err)
		return
	}
	settings, err := oio.Get[Settings](server, "settings")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("theme:", settings.Data.Theme)

	type Thing struct {
		IP string `json:"ip"`
	}
	index, err := oio.Push(server, "things/*", Thing{IP: "127.0.0.1:8080"})
	if err != nil {
		fmt.Println(err)
		return
	}
	things, err := oio.GetList[Thing](server, "things/*")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("things:", len(things), things[0].Index == index, things[0].Data.IP)
	// Output:
	// theme: dark
	// things: 1 true 127.0.0.1:8080
}

func ExampleRemotePush() {
	server := &ooo.Server{Silence: true, Storage: &storage.MemoryStorage{}}
	if err := server.Start("127.0.0.1:0"); err != nil {
		fmt.Println(err)
		return
	}
	defer server.Close(os.Interrupt)

	type Note struct {
		Text string `json:"text"`
	}
	c := &http.Client{Timeout: 5 * time.Second}
	if err := oio.RemotePush(c, false, server.Address, "notes/*", Note{Text: "hello"}, nil); err != nil {
		fmt.Println(err)
		return
	}
	// RemotePushContext also gives the index the server generated.
	index, err := oio.RemotePushContext(context.Background(), c, false, server.Address, "notes/*", Note{Text: "again"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	notes, err := oio.RemoteGetList[Note](c, false, server.Address, "notes/*", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(notes), notes[0].Data.Text, notes[1].Data.Text, notes[1].Index == index)
	// Output: 2 hello again true
}
