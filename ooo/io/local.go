package io

import (
	"encoding/json"
	"fmt"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/client"
	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
	"github.com/benitogf/pivot/ooo/storage"
)

func database(s *ooo.Server) (storage.Database, error) {
	if s == nil || s.Storage == nil {
		return nil, ErrNoServer
	}
	return s.Storage, nil
}

// Get reads the value at a single key of s's storage. A missing key gives an error that
// is errors.Is(err, storage.ErrNotFound); a glob gives ErrGlobPath; data that does not
// decode into T is an error too.
func Get[T any](s *ooo.Server, path string) (client.Meta[T], error) {
	if key.IsGlob(path) {
		return client.Meta[T]{}, fmt.Errorf("io: Get[%s]: %w", path, ErrGlobPath)
	}
	db, err := database(s)
	if err != nil {
		return client.Meta[T]{}, fmt.Errorf("io: Get[%s]: %w", path, err)
	}
	raw, err := db.Get(path)
	if err != nil {
		return client.Meta[T]{}, fmt.Errorf("io: Get[%s]: %w", path, err)
	}
	return decodeObject[T]("Get", path, raw)
}

// GetList reads every value matching a glob of s's storage, oldest first (by Created).
// Items whose data does not decode into T are skipped. An empty list is an empty,
// non-nil slice; a path without a '*' gives ErrNotListPath.
func GetList[T any](s *ooo.Server, path string) ([]client.Meta[T], error) {
	if !key.IsGlob(path) {
		return nil, fmt.Errorf("io: GetList[%s]: %w", path, ErrNotListPath)
	}
	db, err := database(s)
	if err != nil {
		return nil, fmt.Errorf("io: GetList[%s]: %w", path, err)
	}
	raw, err := db.Get(path)
	if err != nil {
		return nil, fmt.Errorf("io: GetList[%s]: %w", path, err)
	}
	return decodeList[T]("GetList", path, raw)
}

// Set stores item, encoded as JSON, at a single key of s's storage.
func Set[T any](s *ooo.Server, path string, item T) error {
	if key.IsGlob(path) {
		return fmt.Errorf("io: Set[%s]: %w", path, ErrGlobPath)
	}
	db, err := database(s)
	if err != nil {
		return fmt.Errorf("io: Set[%s]: %w", path, err)
	}
	data, err := json.Marshal(item)
	if err != nil {
		return fmt.Errorf("io: Set[%s]: encode: %w", path, err)
	}
	if _, err := db.Set(path, data); err != nil {
		return fmt.Errorf("io: Set[%s]: %w", path, err)
	}
	return nil
}

// Push appends item to the list at path (such as "things/*") of s's storage and returns
// the new entry's index: the key is path with its "*" replaced by that index, the hex of
// storage.NewStamp (from the storage's clock: unique across a cluster).
func Push[T any](s *ooo.Server, path string, item T) (string, error) {
	if !key.IsList(path) || !key.IsWritable(path) {
		return "", fmt.Errorf("io: Push[%s]: %w", path, ErrNotListPath)
	}
	db, err := database(s)
	if err != nil {
		return "", fmt.Errorf("io: Push[%s]: %w", path, err)
	}
	data, err := json.Marshal(item)
	if err != nil {
		return "", fmt.Errorf("io: Push[%s]: encode: %w", path, err)
	}
	k := key.BuildAt(path, storage.NewStamp(db))
	if _, err := db.Set(k, data); err != nil {
		return "", fmt.Errorf("io: Push[%s]: %w", path, err)
	}
	return key.LastIndex(k), nil
}

// Del deletes the value at a key of s's storage, or every value matching a glob. A
// missing key is errors.Is(err, storage.ErrNotFound); a glob that matches nothing is not
// an error.
func Del(s *ooo.Server, path string) error {
	db, err := database(s)
	if err != nil {
		return fmt.Errorf("io: Del[%s]: %w", path, err)
	}
	if err := db.Del(path); err != nil {
		return fmt.Errorf("io: Del[%s]: %w", path, err)
	}
	return nil
}

func decodeObject[T any](op, path string, raw []byte) (client.Meta[T], error) {
	o, err := meta.Decode(raw)
	if err != nil {
		return client.Meta[T]{}, fmt.Errorf("io: %s[%s]: %w", op, path, err)
	}
	m, err := client.FromObject[T](o)
	if err != nil {
		return client.Meta[T]{}, fmt.Errorf("io: %s[%s]: %w", op, path, err)
	}
	return m, nil
}

func decodeList[T any](op, path string, raw []byte) ([]client.Meta[T], error) {
	list, err := meta.DecodeList(raw)
	if err != nil {
		return nil, fmt.Errorf("io: %s[%s]: %w", op, path, err)
	}
	return client.FromList[T](list), nil
}
