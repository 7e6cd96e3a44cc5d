package natshub

import (
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/benitogf/pivot/ooo/clock"
)

// Defaults filled in by New for zero Config fields.
const (
	// DefaultRequestTimeout bounds one request to the NATS servers.
	DefaultRequestTimeout = 5 * time.Second
	// DefaultRetryFor bounds how long a write keeps retrying a refused compare-and-set
	// or a cluster without a stream leader before it fails.
	DefaultRetryFor = 20 * time.Second
	// DefaultProcess names the process when Config.Process is empty.
	DefaultProcess = "default"
	// DefaultTombstoneRetention is how long tombstones are kept when
	// Config.TombstoneRetention is zero (the same as the ooo storages').
	DefaultTombstoneRetention = 7 * 24 * time.Hour
)

// Config configures a Storage. Only Bucket is required.
type Config struct {
	// Bucket names the KV bucket holding the data (letters, digits, '-' and '_').
	// Every pivot process serving one cluster uses the same Bucket. The storage also
	// uses the bucket Bucket+"_meta" for cursors and process identities.
	Bucket string
	// Replicas is the number of servers each bucket is replicated on: 1 for one
	// server, 3 (or 5) for a cluster. Zero means 1. It applies when New creates the
	// buckets; existing buckets keep theirs.
	Replicas int
	// Memory keeps the buckets in memory instead of files (tests; data is lost when
	// the servers stop). It applies when New creates the buckets.
	Memory bool
	// Process names this process among those sharing the bucket. Each process has its
	// own identity (Identified: token and clock instance id), kept under this name,
	// so two processes must not share a name. Empty means DefaultProcess.
	Process string
	// Clock stamps the storage's writes. nil makes one whose instance id is the
	// process identity's (kept in the meta bucket).
	Clock *clock.Clock
	// TombstoneRetention is how long tombstones are kept before CollectTombstones
	// forgets them; zero means DefaultTombstoneRetention, a negative value keeps them
	// forever.
	TombstoneRetention time.Duration
	// RequestTimeout bounds each request to the servers; zero means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// RetryFor bounds the retries of one write (compare-and-set refused by a
	// concurrent write, no stream leader during an election); zero means
	// DefaultRetryFor.
	RetryFor time.Duration
}

// bucketName is the grammar of a KV bucket name.
var bucketName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// withDefaults validates c and fills in its zero fields.
func (c Config) withDefaults() (Config, error) {
	if !bucketName.MatchString(c.Bucket) {
		return c, fmt.Errorf("%w: Bucket %q must be letters, digits, '-' and '_'", ErrInvalidConfig, c.Bucket)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return c, fmt.Errorf("%w: Replicas %d must be 1 to 5", ErrInvalidConfig, c.Replicas)
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Process == "" {
		c.Process = DefaultProcess
	}
	if c.RequestTimeout < 0 || c.RetryFor < 0 {
		return c, fmt.Errorf("%w: RequestTimeout and RetryFor must not be negative", ErrInvalidConfig)
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.RetryFor == 0 {
		c.RetryFor = DefaultRetryFor
	}
	if c.TombstoneRetention == 0 {
		c.TombstoneRetention = DefaultTombstoneRetention
	}
	return c, nil
}

// storageType is the JetStream storage of the buckets.
func (c Config) storageType() jetstream.StorageType {
	if c.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}
