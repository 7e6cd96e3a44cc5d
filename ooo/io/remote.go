package io

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	goio "io"
	"net/http"
	"strings"
	"time"

	"github.com/benitogf/pivot/ooo/client"
	"github.com/benitogf/pivot/ooo/key"
)

// DefaultTimeout bounds a Remote call whose http.Client has no Timeout and whose context
// has no deadline, so that no call can hang forever.
const DefaultTimeout = 10 * time.Second

// maxErrorMessage is how much of an error response body a StatusError keeps.
const maxErrorMessage = 512

// The Remote helpers keep upstream ooo's signatures: (c, ssl, host, path, [item,] header).
// They call http(s)://host/path with c (http.DefaultClient when nil); header entries
// replace the request's headers of the same name. Each has a ...Context twin that also
// takes a context; the plain form uses context.Background(). See DefaultTimeout.

// RemoteGet reads the value at a single key of the server at host. A missing key is a
// *StatusError that is errors.Is(err, storage.ErrNotFound).
func RemoteGet[T any](c *http.Client, ssl bool, host, path string, header http.Header) (client.Meta[T], error) {
	return RemoteGetContext[T](context.Background(), c, ssl, host, path, header)
}

// RemoteGetContext is RemoteGet bounded by ctx as well.
func RemoteGetContext[T any](ctx context.Context, c *http.Client, ssl bool, host, path string, header http.Header) (client.Meta[T], error) {
	if key.IsGlob(path) {
		return client.Meta[T]{}, fmt.Errorf("io: RemoteGet[%s]: %w", path, ErrGlobPath)
	}
	raw, err := call(ctx, c, "RemoteGet", http.MethodGet, ssl, host, path, nil, header)
	if err != nil {
		return client.Meta[T]{}, err
	}
	return decodeObject[T]("RemoteGet", path, raw)
}

// RemoteGetList reads every value matching a glob of the server at host, oldest first.
// Items whose data does not decode into T are skipped; an empty list is an empty,
// non-nil slice.
func RemoteGetList[T any](c *http.Client, ssl bool, host, path string, header http.Header) ([]client.Meta[T], error) {
	return RemoteGetListContext[T](context.Background(), c, ssl, host, path, header)
}

// RemoteGetListContext is RemoteGetList bounded by ctx as well.
func RemoteGetListContext[T any](ctx context.Context, c *http.Client, ssl bool, host, path string, header http.Header) ([]client.Meta[T], error) {
	if !key.IsGlob(path) {
		return nil, fmt.Errorf("io: RemoteGetList[%s]: %w", path, ErrNotListPath)
	}
	raw, err := call(ctx, c, "RemoteGetList", http.MethodGet, ssl, host, path, nil, header)
	if err != nil {
		return nil, err
	}
	return decodeList[T]("RemoteGetList", path, raw)
}

// RemoteSet stores item at a single key of the server at host (a POST).
func RemoteSet[T any](c *http.Client, ssl bool, host, path string, item T, header http.Header) error {
	return RemoteSetContext(context.Background(), c, ssl, host, path, item, header)
}

// RemoteSetContext is RemoteSet bounded by ctx as well.
func RemoteSetContext[T any](ctx context.Context, c *http.Client, ssl bool, host, path string, item T, header http.Header) error {
	if key.IsGlob(path) {
		return fmt.Errorf("io: RemoteSet[%s]: %w", path, ErrGlobPath)
	}
	body, err := json.Marshal(item)
	if err != nil {
		return fmt.Errorf("io: RemoteSet[%s]: encode: %w", path, err)
	}
	_, err = call(ctx, c, "RemoteSet", http.MethodPost, ssl, host, path, body, header)
	return err
}

// RemotePush appends item to the list at path (such as "things/*") of the server at host.
// It returns only an error, as upstream's does, so programs written for upstream compile
// unchanged; RemotePushContext also returns the index of the new entry. Unlike upstream,
// which built the index on the client, the server generates it from its own clock, so it
// is unique there.
func RemotePush[T any](c *http.Client, ssl bool, host, path string, item T, header http.Header) error {
	_, err := RemotePushContext(context.Background(), c, ssl, host, path, item, header)
	return err
}

// RemotePushContext is RemotePush bounded by ctx as well, and returns the index the
// server gave the new entry (the last segment of its key).
func RemotePushContext[T any](ctx context.Context, c *http.Client, ssl bool, host, path string, item T, header http.Header) (string, error) {
	if !key.IsList(path) || !key.IsWritable(path) {
		return "", fmt.Errorf("io: RemotePush[%s]: %w", path, ErrNotListPath)
	}
	body, err := json.Marshal(item)
	if err != nil {
		return "", fmt.Errorf("io: RemotePush[%s]: encode: %w", path, err)
	}
	raw, err := call(ctx, c, "RemotePush", http.MethodPost, ssl, host, path, body, header)
	if err != nil {
		return "", err
	}
	var reply struct {
		Index string `json:"index"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return "", fmt.Errorf("io: RemotePush[%s]: decode reply: %w", path, err)
	}
	if reply.Index == "" || reply.Index == "*" {
		return "", fmt.Errorf("io: RemotePush[%s]: server replied without an index: %s", path, raw)
	}
	return reply.Index, nil
}

// RemoteDel deletes the value at a key of the server at host, or every value matching
// a glob. A missing key is a *StatusError that is errors.Is(err, storage.ErrNotFound).
func RemoteDel(c *http.Client, ssl bool, host, path string, header http.Header) error {
	return RemoteDelContext(context.Background(), c, ssl, host, path, header)
}

// RemoteDelContext is RemoteDel bounded by ctx as well.
func RemoteDelContext(ctx context.Context, c *http.Client, ssl bool, host, path string, header http.Header) error {
	_, err := call(ctx, c, "RemoteDel", http.MethodDelete, ssl, host, path, nil, header)
	return err
}

// call makes one request and returns the body of a successful answer (200, or 204 for
// a delete).
func call(ctx context.Context, c *http.Client, op, method string, ssl bool, host, path string, body []byte, header http.Header) ([]byte, error) {
	if c == nil {
		c = http.DefaultClient
	}
	if _, ok := ctx.Deadline(); !ok && c.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	scheme := "http"
	if ssl {
		scheme = "https"
	}
	address := client.URL(scheme, host, path)
	var reader goio.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, address, reader)
	if err != nil {
		return nil, fmt.Errorf("io: %s[%s]: %w", op, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for name, values := range header {
		req.Header[name] = values
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("io: %s[%s]: %w", op, path, err)
	}
	defer resp.Body.Close()
	raw, err := goio.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("io: %s[%s]: read body: %w", op, path, err)
	}
	ok := resp.StatusCode == http.StatusOK ||
		(method == http.MethodDelete && resp.StatusCode == http.StatusNoContent)
	if !ok {
		msg := strings.TrimSpace(string(raw))
		if len(msg) > maxErrorMessage {
			msg = msg[:maxErrorMessage]
		}
		return nil, &StatusError{Op: op, Path: path, StatusCode: resp.StatusCode, Message: msg}
	}
	return raw, nil
}
