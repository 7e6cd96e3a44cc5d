package pivot

import "time"

// The tunables of the engine, each with its reason. Config holds what a program may
// set; these are what the code relies on.

const (
	// proofWindow is how far a request's time may be from the receiver's clock. The
	// cluster already needs clocks within clock.DefaultMaxSkew (1 s) for writes to be
	// accepted; the window is wider so that a node with a drifting clock can still
	// sync and be told why its writes are refused.
	proofWindow = time.Minute
	// maxNonces bounds the nonces remembered for replay detection. Only requests with a
	// valid proof are remembered, so only a holder of the secret can fill it; a full
	// cache refuses requests (503) rather than forget a nonce early.
	maxNonces = 1 << 20
	// nonceBytes is the size of a nonce before hex encoding.
	nonceBytes = 16
	// minTokenLength is the shortest Token that does not draw a warning.
	minTokenLength = 16
)

// maxClusterID bounds the length of Config.ClusterID, which travels in a header.
const maxClusterID = 128

// cursorFlushInterval is the longest a moved cursor stays unsaved. Saving is deferred
// because on a persistent storage each save is a disk sync; a cursor lost in a crash
// only makes the node send or fetch again what it already did, which LWW makes
// harmless.
const cursorFlushInterval = 250 * time.Millisecond

// treeDepth is the number of hex digits that name a leaf: 16^3 = 4096 leaves, about
// 25 entries a leaf at 100,000 entries.
const treeDepth = 3

// treeLeaves is the number of leaves.
const treeLeaves = 1 << (4 * treeDepth)

// treeRebuildEvery is how many checks a tree serves before it is rebuilt from a full
// read of the data instead of the feed.
const treeRebuildEvery = 20

// maxFeedReads bounds the storage reads behind one feedPage, so a long stretch of
// changes the page does not keep (a push skips received entries) cannot make one call
// read the whole feed; the page then ends early with more set.
const maxFeedReads = 64

// feedChunk is the most changes the first storage read of a page asks for: with values
// of up to MaxBodyBytes, a read must not pull far more into memory than the page can
// carry. Later reads are sized by what the values read so far weigh.
const feedChunk = 16

// slotHold is the longest a trigger holds one of the FanOut slots. A node answers a
// trigger at once (the sync runs after the answer), so a slower answer means a slow or
// unreachable node, which must not hold up the others.
const slotHold = 100 * time.Millisecond

// A registration the pivot cannot reach (a node gone for good, a wrong or hostile
// address) is dialled with backoff dormantAfter times in a row, then only every
// dormantRetry: it costs the pivot next to nothing. A request from the node (it syncs
// on its own too) makes it live again at once.
const (
	dormantAfter = 10
	dormantRetry = 5 * time.Minute
)

// maxOwn bounds the pushed entries the pivot remembers per node and key between two of
// the node's pulls. Past it the pivot forgets them and triggers the node after every
// change until its next pull to the head of the feed.
const maxOwn = maxLimit

// holdsAllReads bounds the feed reads of one holdsAll. A node that keeps pushing while
// the pivot checks its view may need a second read; a check that does not reach the
// head of the feed gives up, and the node is triggered.
const holdsAllReads = 4

// maxLimit is the most changes one pull may ask for.
const maxLimit = 10000

// maxSnapshotPages bounds the pages one reconciliation reads (with the default batch,
// 5 million entries); a bigger collection finishes in the next round.
const maxSnapshotPages = 10000

// maxTreeRequests bounds the tree requests of one check: with 16 children a level and
// treeDepth levels, a few hundred differing leaves are narrowed down in one check; a
// bigger difference is repaired over the next checks (or was a reconciliation's job).
const maxTreeRequests = 256

// maxBatchesPerRound bounds the batches one key moves in one direction per round; a
// key with more to move schedules another round, so every loop is bounded.
const maxBatchesPerRound = 64

// maxShrink bounds how many times a key's byte budget is halved (to 1/64).
const maxShrink = 6

// writerIdleReuse is how long an id must go unconfirmed before the registry, once full,
// hands it to another storage: far longer than any clock skew, so the stamps its old
// holder made are long past.
const writerIdleReuse = 24 * time.Hour

// storagePoll is how often the hub checks, once the server started, whether the
// synced storages other than the server's (Keys with their own Database, which the
// program starts itself) are started too.
const storagePoll = 10 * time.Millisecond

// nodesPage is how many NodesKey entries one read of the registrations takes.
const nodesPage = 1000

// closeDrain bounds how long closing a node waits for its unsent local writes to reach
// the pivot: long enough for a round on a live link, short enough not to hold up a
// shutdown (a write still unsent is pushed at the next start, never lost).
const closeDrain = 2 * time.Second

// The live stream (stream_hub.go, stream_node.go).
const (
	// streamInlineBytes is the most bytes of entries (entrySize) one stream frame
	// carries. A change set bigger than that is a poke, and the node pulls it: a pull
	// page is compressed and bounded by the node's own budget, and one large value
	// must not hold up the frames of the other keys on the connection.
	streamInlineBytes = 64 << 10
	// streamInlineChanges is the most changes one frame carries, as the most bytes of
	// a frame keep one frame from holding up the others on the connection.
	streamInlineChanges = 256
	// streamFramesPerCast is the most frames one change sends a node (a burst that
	// outgrew one frame): a node further behind pulls instead.
	streamFramesPerCast = 16
	// streamQueueBytes bounds the frames queued for one node and not yet written to
	// its connection. A node that reads slower than the pivot writes reaches it; its
	// queue is then dropped and replaced by one poke per key (it pulls what it
	// missed), so a slow node costs the pivot at most this much memory, and never
	// slows the writes or the other nodes.
	streamQueueBytes = 1 << 20
	// streamWriteTimeout bounds one frame's write to a node's connection: a node
	// that stops reading altogether has its stream closed, and reconnects.
	streamWriteTimeout = 10 * time.Second
	// streamPing is how often each side of an idle stream shows it is alive; a side
	// that hears nothing for streamIdle closes the stream (the node then
	// reconnects). A NAT drops idle mappings after tens of seconds or minutes: the
	// pings keep the node's mapping open too.
	streamPing = 15 * time.Second
	streamIdle = 3 * streamPing
	// streamAckLimit bounds one message from a node (an ack is about 200 bytes).
	streamAckLimit = 16 << 10
	// streamOffRetry is how long a node waits before asking again for a stream the
	// pivot refused as unknown (404: an older pivot, or one with DisableStream).
	streamOffRetry = time.Minute
)
