package wfbackend

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microsoft/durabletask-go/backend"
)

// ErrClosed is returned by operations on a Backend after Close.
var ErrClosed = errors.New("workflow backend closed")

var _ backend.Backend = (*Backend)(nil)

// Backend is a durable, event-driven backend.Backend over one SQLite file.
// Create it with Open and release it with Close. It is safe for concurrent
// use; see the package documentation for the design.
type Backend struct {
	log  *slog.Logger
	opts options
	path string
	now  func() time.Time

	wdb   *sql.DB
	wconn *sql.Conn
	w     writerStmts
	rdb   *sql.DB
	r     readerStmts

	// owner prefixes lock tokens so that tokens from different Backends (and
	// processes) never match.
	owner   string
	lockSeq atomic.Uint64

	// nextID is the last inbox row or activity id handed out; committer (and
	// loadState) only.
	nextID int64

	ops           chan *op
	closeMu       sync.RWMutex // held for reading while submitting to ops
	closed        bool
	committerDone chan struct{}
	batches       atomic.Int64 // committed transactions, for tests and stats
	committed     atomic.Int64 // committed ops

	timerKick chan struct{}
	quit      chan struct{}
	timerDone chan struct{}

	mu         sync.Mutex
	instances  map[string]*instance
	ready      fifo[*instance] // instances that have started, with work to do
	readyNew   fifo[*instance] // instances whose first turn is due
	newTurns   int             // first turns handed out since the last starvation check
	actQueue   fifo[*activity]
	activeActs map[int64]*activity
	// incarnations numbers the instances created since Open that have not
	// finished, so that an activity can tell the instance that scheduled it
	// from one that replaced it under the same id (see
	// CompleteActivityWorkItem). Instances loaded by Open are incarnation 0.
	incarnations    map[string]uint64
	lastIncarnation uint64
	timers          timerHeap
	cache           *historyCache
	completion      map[string]*waiter
	orchSignal      signal
	actSignal       signal
	stopped         bool // Stop was called: hand out no more work
	hubReady        bool // false after DeleteTaskHub until CreateTaskHub
	isClosed        bool
}

// options are set with Option values passed to Open.
type options struct {
	readers   int
	cacheSize int
	maxBatch  int
	queueSize int
	// wait bounds how long Get*WorkItem blocks for work: negative waits until
	// work, ctx or Stop; zero does not wait.
	wait time.Duration
}

// Option configures Open.
type Option func(*options)

// WithReadConnections sets the size of the read pool serving metadata and
// history reads (default 4).
func WithReadConnections(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.readers = n
		}
	}
}

// WithHistoryCacheSize sets how many instances' histories are kept in memory
// (default 10,000). Set it above the number of orchestrations expected to run
// at once, or turns start reading history from the database. Zero disables the
// cache.
func WithHistoryCacheSize(n int) Option {
	return func(o *options) {
		if n >= 0 {
			o.cacheSize = n
		}
	}
}

// WithMaxBatch caps how many changes share one transaction (default 512). A
// cap keeps a single commit, and so the latency of the changes in it, bounded.
func WithMaxBatch(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxBatch = n
		}
	}
}

// WithWorkItemWait bounds how long GetOrchestrationWorkItem and
// GetActivityWorkItem wait for work before returning backend.ErrNoWorkItems.
// Zero makes them return at once, which is what durabletask-go's backend
// contract tests expect.
//
// Without this option they wait until work arrives, ctx is done or Stop is
// called. That is the right setting under durabletask-go v0.5.0's worker: when
// a fetch returns ErrNoWorkItems, the worker sleeps a back-off that starts at
// 50 ms and grows towards 5 s while idle, and work enqueued meanwhile waits
// for the sleep to end. Blocking in the fetch instead hands work out the
// moment it is enqueued.
func WithWorkItemWait(d time.Duration) Option {
	return func(o *options) {
		o.wait = max(d, 0)
	}
}

// Open opens (creating if needed) the workflow database at path and loads its
// pending work into memory. Work that a previous process had locked is
// available at once: locks are never stored. The caller owns the file: one
// Backend per file per machine (see the package documentation).
func Open(path string, logger *slog.Logger, opts ...Option) (*Backend, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := options{readers: 4, cacheSize: 10_000, maxBatch: 512, queueSize: 4096, wait: -1}
	for _, opt := range opts {
		opt(&o)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("open workflow store: %w", err)
	}
	b := &Backend{
		log:           logger.With("component", "wfbackend"),
		opts:          o,
		path:          path,
		now:           time.Now,
		owner:         fmt.Sprintf("wfbackend/%d/%s", os.Getpid(), hex.EncodeToString(rnd[:])),
		ops:           make(chan *op, o.queueSize),
		committerDone: make(chan struct{}),
		timerKick:     make(chan struct{}, 1),
		quit:          make(chan struct{}),
		timerDone:     make(chan struct{}),
		instances:     make(map[string]*instance),
		activeActs:    make(map[int64]*activity),
		incarnations:  make(map[string]uint64),
		cache:         newHistoryCache(o.cacheSize),
		completion:    make(map[string]*waiter),
		hubReady:      true,
	}
	ctx := context.Background()
	if err := b.openStore(ctx, path); err != nil {
		return nil, errors.Join(fmt.Errorf("open workflow store %s: %w", path, err), b.closeStore())
	}
	if err := b.loadState(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open workflow store %s: %w", path, err), b.closeStore())
	}
	go b.runCommitter()
	go b.runTimers()
	return b, nil
}

// Close stops handing out work, waits for queued changes to commit, and closes
// the database. Work items still locked are simply not completed: the next
// Open finds them available again. Stop the task hub worker first, or its
// in-flight completions fail with ErrClosed.
func (b *Backend) Close() error {
	b.closeMu.Lock()
	if b.closed {
		b.closeMu.Unlock()
		return nil
	}
	b.closed = true
	close(b.ops)
	b.closeMu.Unlock()
	<-b.committerDone

	close(b.quit)
	<-b.timerDone

	b.mu.Lock()
	b.isClosed = true
	b.orchSignal.broadcast()
	b.actSignal.broadcast()
	for id, w := range b.completion {
		close(w.ch)
		delete(b.completion, id)
	}
	b.mu.Unlock()
	if err := b.closeStore(); err != nil {
		return fmt.Errorf("close workflow store: %w", err)
	}
	return nil
}

// String names the backend in durabletask-go's log lines.
func (b *Backend) String() string {
	return "wfbackend::" + b.path
}

// newToken returns a fresh lock token (a work item's LockedBy).
func (b *Backend) newToken() string {
	return b.owner + "/" + strconv.FormatUint(b.lockSeq.Add(1), 36)
}

// usableLocked reports why the backend cannot serve requests, if it cannot.
func (b *Backend) usableLocked() error {
	switch {
	case b.isClosed:
		return ErrClosed
	case !b.hubReady:
		return backend.ErrNotInitialized
	}
	return nil
}

func (b *Backend) usable() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.usableLocked()
}

// CreateTaskHub implements backend.Backend. Open already creates the task hub
// (the schema), so this returns backend.ErrTaskHubExists, which
// backend.TaskHubWorker ignores, unless DeleteTaskHub removed it.
func (b *Backend) CreateTaskHub(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.isClosed {
		return ErrClosed
	}
	if b.hubReady {
		return backend.ErrTaskHubExists
	}
	b.hubReady = true
	return nil
}

// DeleteTaskHub implements backend.Backend: it deletes every instance and all
// pending work. Until CreateTaskHub is called again, other operations return
// backend.ErrNotInitialized.
func (b *Backend) DeleteTaskHub(ctx context.Context) error {
	if err := b.usable(); errors.Is(err, backend.ErrNotInitialized) {
		return backend.ErrTaskHubNotFound
	} else if err != nil {
		return err
	}
	return b.submit(ctx, &op{run: func(tx *txn, eff *effects) error {
		for _, q := range []string{`DELETE FROM instances`, `DELETE FROM history`, `DELETE FROM inbox`} {
			if _, err := b.wconn.ExecContext(context.Background(), q); err != nil {
				return fmt.Errorf("delete task hub: %w", err)
			}
		}
		eff.hubDeleted = true
		return nil
	}})
}

// Start implements backend.Backend: work items are handed out again after a
// Stop. Background processing itself starts in Open.
func (b *Backend) Start(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.isClosed {
		return ErrClosed
	}
	b.stopped = false
	b.orchSignal.broadcast()
	b.actSignal.broadcast()
	return nil
}

// Stop implements backend.Backend: it stops handing out work items. Fetches
// keep waiting (until their ctx ends, Start, or their wait bound) rather than
// return backend.ErrNoWorkItems: durabletask-go v0.5.0's worker would answer
// that with a poll loop racing its own shutdown (backend.TaskHubWorker stops
// the backend, then cancels and drains the workers). Changes, such as
// completions of work already handed out, are still accepted.
func (b *Backend) Stop(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	return nil
}

// runTimers makes durable timers visible when they are due. It sleeps until
// the earliest timer; adding an earlier one kicks it to re-arm.
func (b *Backend) runTimers() {
	defer close(b.timerDone)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		b.mu.Lock()
		b.fireDueTimersLocked(b.now())
		next, ok := b.nextTimerLocked()
		b.mu.Unlock()
		if ok {
			t.Reset(time.Until(next))
		} else {
			t.Stop()
		}
		select {
		case <-t.C:
		case <-b.timerKick:
		case <-b.quit:
			return
		}
	}
}

// Stats describes the committer's work so far.
type Stats struct {
	// Transactions is the number of committed transactions.
	Transactions int64 `json:"transactions"`
	// Changes is the number of changes (API calls) they carried; divided by
	// Transactions it gives the mean group-commit batch size.
	Changes int64 `json:"changes"`
	// Waiting is the number of instances created and not yet started (see
	// Backend.Waiting).
	Waiting int `json:"waiting"`
}

// Waiting returns how many instances have been created and wait for their
// first turn: the backlog of accepted work that has not started.
func (b *Backend) Waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readyNew.len()
}

// Stats reports the committer's work so far, to observe group commit.
func (b *Backend) Stats() Stats {
	return Stats{Transactions: b.batches.Load(), Changes: b.committed.Load(), Waiting: b.Waiting()}
}
