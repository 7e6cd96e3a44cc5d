package natshub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// bucket is one KV bucket addressed through its stream: reads go to the stream leader
// (direct gets are off), writes are publishes with an expected last sequence per
// subject (compare-and-set by revision), and scans read an ephemeral consumer.
type bucket struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	name   string // the bucket name
	prefix string // "$KV.<name>."
	// idle holds unfiltered consumers between scans. Making a consumer is a request
	// to the meta leader (on a cluster a Raft round, about 25 ms); moving an existing
	// one to another sequence is a request to the consumer alone.
	idle chan jetstream.Consumer
}

// idleConsumers is how many unfiltered consumers a bucket keeps between scans.
const idleConsumers = 8

// openBucket binds the KV bucket name, creating it when missing. An existing bucket
// must keep one revision per key; direct gets are switched off on it, since a direct
// get may be answered by a replica that lags the leader.
func openBucket(ctx context.Context, js jetstream.JetStream, name string, replicas int, st jetstream.StorageType) (*bucket, error) {
	streamName := "KV_" + name
	cfg := jetstream.StreamConfig{
		Name:              streamName,
		Subjects:          []string{"$KV." + name + ".>"},
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Storage:           st,
		Replicas:          replicas,
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        2 * time.Minute,
		Discard:           jetstream.DiscardNew,
		AllowDirect:       false,
		// Apply publishes a batch of entries in one request (publishBatch).
		AllowAtomicPublish: true,
	}
	s, err := js.Stream(ctx, streamName)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, streamName) // another process created it first
		}
		if err != nil {
			return nil, fmt.Errorf("%w: create bucket %q: %w", ErrBucket, name, err)
		}
	case err != nil:
		return nil, fmt.Errorf("%w: bind bucket %q: %w", ErrBucket, name, err)
	}
	info := s.CachedInfo()
	if info.Config.MaxMsgsPerSubject != 1 {
		return nil, fmt.Errorf("%w: bucket %q keeps %d revisions per key; a change feed needs exactly 1 (history 1)", ErrBucket, name, info.Config.MaxMsgsPerSubject)
	}
	if info.Config.AllowDirect || !info.Config.AllowAtomicPublish {
		up := info.Config
		up.AllowDirect, up.AllowAtomicPublish = false, true
		if s, err = js.UpdateStream(ctx, up); err != nil {
			return nil, fmt.Errorf("%w: switch off direct gets and allow atomic batches on bucket %q: %w", ErrBucket, name, err)
		}
	}
	return &bucket{js: js, stream: s, name: name, prefix: "$KV." + name + ".", idle: make(chan jetstream.Consumer, idleConsumers)}, nil
}

// get returns the last message of the KV key k from the stream leader, nil when the
// key has none.
func (b *bucket) get(ctx context.Context, k string) (*jetstream.RawStreamMsg, error) {
	m, err := b.stream.GetLastMsgForSubject(ctx, b.prefix+k)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return m, err
}

// publish writes m when the key's last revision is rev (0: the key has no message)
// and returns the new revision. id names the write for the server's duplicate window,
// so a retry of a publish whose acknowledgement was lost is not stored twice.
func (b *bucket) publish(ctx context.Context, m *nats.Msg, rev uint64, id string) (uint64, error) {
	ack, err := b.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgID(id),
		jetstream.WithRetryAttempts(0))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// head returns the stream's last sequence, as the stream leader answers it (stream
// info is answered by the leader only).
func (b *bucket) head(ctx context.Context) (uint64, error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// scan calls fn with every message whose subject matches the KV key filter and whose
// sequence is above since, in sequence order, as the stream holds them when the scan
// starts (each key once, at its last revision), until fn returns false. headersOnly
// leaves the data out. The cost is one consumer and the messages read.
//
// want, when above zero, is about how many more messages fn will take: the consumer
// is asked for batches of about that size, since a batch cut short by fn is read to
// its end (so the reused consumer has no request in flight when it is moved).
//
// On a cluster the consumer reads its own server's copy of the stream, which may lag
// the leader's (an R1 consumer is placed on any replica), or deliver less than it has
// pending: the scan sees what it was delivered only (Storage.readLeader reads the rest).
func (b *bucket) scan(ctx context.Context, filter string, since uint64, headersOnly bool, want int, fn func(m jetstream.Msg) bool) error {
	cc := jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       headersOnly,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
	}
	if since > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, since+1
	}
	if filter != ">" {
		// A filter costs the server a walk of the matching subjects to count what is
		// pending (10 ms at 10k keys); the whole stream needs none.
		cc.FilterSubject = b.prefix + filter
	}
	var (
		cons    jetstream.Consumer
		pending uint64
	)
	if filter == ">" && !headersOnly {
		c, n, err := b.reuse(ctx, since)
		if err != nil {
			return err
		}
		cons, pending = c, n
		defer b.release(ctx, c)
	} else {
		c, err := b.stream.CreateConsumer(ctx, cc)
		if err != nil {
			return fmt.Errorf("create consumer: %w", err)
		}
		cons, pending = c, c.CachedInfo().NumPending
		defer b.drop(ctx, c)
	}
	for pending > 0 {
		n := min(pending, 1024)
		if want > 0 {
			n = min(n, uint64(max(want, 32)))
		}
		batch, err := cons.FetchNoWait(int(n))
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		got, stop := 0, false
		for m := range batch.Messages() {
			got++
			if stop {
				continue // the rest of a batch cut short
			}
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("message metadata: %w", err)
			}
			pending = md.NumPending
			stop = !fn(m)
		}
		if stop {
			return nil
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		if got == 0 {
			return nil // what was pending was removed (superseded or purged) meanwhile
		}
	}
	return nil
}

// fromLeader calls fn with each message whose subject matches the KV key filter and
// whose sequence is above since and at most head, in sequence order, read one at a time
// from the stream leader (a message get with a subject is answered by the leader alone,
// with the next message at or after a sequence), until fn returns false. It returns
// the sequence through which the leader's copy was read: head when it holds no further
// match up to head, else the last message read; a caller reading on from the result
// loses nothing.
//
// A consumer reads the copy of the stream on its own server, which may lag the leader;
// this reads what the leader acknowledged, at one round trip a message, so it is for
// the few messages a lagging copy has not delivered yet.
func (b *bucket) fromLeader(ctx context.Context, filter string, since, head uint64, fn func(m *jetstream.RawStreamMsg) bool) (uint64, error) {
	for {
		if since >= head {
			return head, nil
		}
		m, err := b.stream.GetMsg(ctx, since+1, jetstream.WithGetMsgSubject(b.prefix+filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return head, nil
		}
		if err != nil {
			return since, err
		}
		if m.Sequence > head {
			return head, nil
		}
		since = m.Sequence
		if !fn(m) {
			return since, nil
		}
	}
}

// Headers of an atomic batch (JetStream 2.12 and later).
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// maxAtomicBatch is the most messages publishBatch sends at once (the servers' default
// limit of a batch is 1000).
const maxAtomicBatch = 500

// publishBatch publishes msgs (at most maxAtomicBatch, each with its expected last
// sequence per subject in revs) as one atomic batch: all are stored, with consecutive
// sequences, or none is (a refused expectation refuses the batch). It returns the
// sequence of the first. One round trip and, on one server syncing every write, far
// fewer disk syncs than a publish per message.
func (b *bucket) publishBatch(ctx context.Context, msgs []*nats.Msg, revs []uint64) (uint64, error) {
	id := newID()
	nc := b.js.Conn()
	for i, m := range msgs {
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(revs[i], 10))
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			if err := nc.PublishMsg(m); err != nil {
				return 0, err
			}
			continue
		}
		m.Header.Set(hdrBatchCommit, "1")
		reply, err := nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return 0, err
		}
		var ack struct {
			Error *jetstream.APIError `json:"error"`
			Seq   uint64              `json:"seq"`
			Count int                 `json:"count"`
		}
		if err := json.Unmarshal(reply.Data, &ack); err != nil {
			return 0, fmt.Errorf("batch acknowledgement %q: %w", reply.Data, err)
		}
		if ack.Error != nil {
			return 0, ack.Error
		}
		if ack.Count != len(msgs) || ack.Seq < uint64(len(msgs)) {
			return 0, fmt.Errorf("batch of %d acknowledged as %d up to %d", len(msgs), ack.Count, ack.Seq)
		}
		return ack.Seq - uint64(len(msgs)) + 1, nil
	}
	return 0, nil
}

// reuse returns an unfiltered consumer of the whole stream positioned after since, the
// number of messages it has pending: an idle one moved
// there, or a new one moved there (a consumer made at a start sequence cannot be moved
// below it later).
//
// A move is one request to the consumer's server, which has been seen not to answer
// right after a cluster's start (the client waited out its whole request timeout, and
// the node's pull with it): a move gets resetWait, and a consumer that does not answer
// in time is dropped for a new one.
func (b *bucket) reuse(ctx context.Context, since uint64) (jetstream.Consumer, uint64, error) {
	for {
		var c jetstream.Consumer
		select {
		case c = <-b.idle:
		default:
		}
		if c == nil {
			var err error
			c, err = b.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
				AckPolicy:         jetstream.AckNonePolicy,
				MemoryStorage:     true,
				Replicas:          1,
				InactiveThreshold: 5 * time.Minute,
				DeliverPolicy:     jetstream.DeliverAllPolicy,
			})
			if err != nil {
				return nil, 0, fmt.Errorf("create consumer: %w", err)
			}
		}
		rctx, cancel := context.WithTimeout(ctx, resetWait)
		resp, err := b.stream.ResetConsumerToSequence(rctx, c.CachedInfo().Name, since+1)
		cancel()
		if err == nil {
			return c, resp.NumPending, nil
		}
		b.drop(ctx, c) // expired while idle, lost with a server, or not answering: take another
		if ctx.Err() != nil {
			return nil, 0, fmt.Errorf("reset consumer: %w", err)
		}
		if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, context.DeadlineExceeded) && !isTransient(err) {
			return nil, 0, fmt.Errorf("reset consumer: %w", err)
		}
	}
}

// resetWait bounds the move of a consumer (reuse). A consumer's server answers it
// in about a millisecond on one network.
const resetWait = time.Second

// release puts a consumer back among the idle ones, or drops it when they are enough.
func (b *bucket) release(ctx context.Context, c jetstream.Consumer) {
	select {
	case b.idle <- c:
	default:
		b.drop(ctx, c)
	}
}

// drop deletes a consumer. Deleting costs a round trip; a consumer also goes away by
// itself after its InactiveThreshold when this fails.
func (b *bucket) drop(ctx context.Context, c jetstream.Consumer) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = b.stream.DeleteConsumer(dctx, c.CachedInfo().Name)
}

// close deletes the idle consumers, within one request timeout in all (with the
// servers gone they expire by themselves).
func (b *bucket) close(ctx context.Context, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	for {
		select {
		case c := <-b.idle:
			_ = b.stream.DeleteConsumer(ctx, c.CachedInfo().Name)
		default:
			return
		}
	}
}

// isConflict reports whether err is a compare-and-set refused because the key's last
// revision was not the one expected (a concurrent write landed first). Replicated
// streams answer with another error code than single-server ones.
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// isTransient reports whether err may go away by itself: no responders or no answer
// while a stream leader is being elected, a request timeout, a reconnecting client.
func isTransient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.Code == 503 {
		return true // cluster or stream leader not available
	}
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, jetstream.ErrAsyncPublishTimeout)
}

// retrier runs attempts of one operation with bounded, jittered backoff.
type retrier struct {
	parent  context.Context // ends every attempt (the storage's context)
	timeout time.Duration   // bound of one attempt
	budget  time.Duration   // bound of all attempts
}

// do calls attempt until it returns nil or an error that is neither a conflict nor
// transient, or until the budget is spent; it then returns the last error, wrapped
// with ErrUnavailable when the budget ran out. attempt re-reads what it needs: after a
// conflict the state it read is stale.
func (r retrier) do(attempt func(ctx context.Context) error) error {
	deadline := time.Now().Add(r.budget)
	wait := time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(r.parent, r.timeout)
		err := attempt(ctx)
		cancel()
		if err == nil || !(isConflict(err) || isTransient(err)) || r.parent.Err() != nil {
			return err
		}
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%w: retried for %s: %w", ErrUnavailable, r.budget, err)
		}
		// Full jitter, so writers that collided do not collide again in step.
		t := time.NewTimer(rand.N(wait) + wait/2)
		select {
		case <-t.C:
		case <-r.parent.Done():
			t.Stop()
			return err
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

// put writes m whatever the key's last revision (last write wins), deduplicated by id.
func (b *bucket) put(ctx context.Context, m *nats.Msg, id string) error {
	_, err := b.putSeq(ctx, m, id)
	return err
}

// putSeq is put returning the message's sequence.
func (b *bucket) putSeq(ctx context.Context, m *nats.Msg, id string) (uint64, error) {
	ack, err := b.js.PublishMsg(ctx, m, jetstream.WithMsgID(id), jetstream.WithRetryAttempts(0))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}
