// Package embedded is taskagent's in-process runtime: a virtual-actor host whose
// actors keep their state, reminders and published events in one SQLite database,
// and the event log that serves those events back. It implements the contract of
// package actor for a single machine, with nothing else to install.
//
// Each actor (type, id) runs one turn at a time. An actor is activated by its first
// call and deactivated after it has been idle for the idle timeout; deactivation only
// drops the cached state, so an idle actor costs no goroutine and, once deactivated,
// no memory. A turn's state writes, reminder changes and events are committed in one
// transaction (see committer.go), so an event is in the log exactly when the state
// change that produced it is stored (an outbox).
package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/event"
)

// Options tune a Host. The zero value of each field means its default.
type Options struct {
	// IdleTimeout is how long an actor stays active without calls. Default 60 minutes.
	IdleTimeout time.Duration
	// ReminderRetry is the first wait before a failed reminder callback runs again;
	// it doubles with every failure up to ReminderRetryMax. Defaults 1 s and 1 minute.
	ReminderRetry, ReminderRetryMax time.Duration
	// MaxConcurrentReminders bounds how many reminder callbacks run at once. Default 64.
	MaxConcurrentReminders int
	// EventRetention is how long published events stay in the event log for
	// readers to catch up. Default 7 days.
	EventRetention time.Duration
	// Logger receives the host's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Minute
	}
	if o.ReminderRetry <= 0 {
		o.ReminderRetry = time.Second
	}
	if o.ReminderRetryMax <= 0 {
		o.ReminderRetryMax = time.Minute
	}
	if o.ReminderRetryMax < o.ReminderRetry {
		o.ReminderRetryMax = o.ReminderRetry
	}
	if o.MaxConcurrentReminders <= 0 {
		o.MaxConcurrentReminders = 64
	}
	if o.EventRetention <= 0 {
		o.EventRetention = 7 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// DBFile is the name of the host's database in its data directory.
const DBFile = "actors.db"

// Host runs actors in this process. It implements actor.Invoker and is safe for
// concurrent use.
type Host struct {
	opts   Options
	log    *slog.Logger
	types  map[string]actor.Type
	writer *sql.DB
	reader *sql.DB
	commit *committer
	sched  *scheduler
	events *eventLog
	// readState is prepared once: it is the read of every activation's first Get.
	readState *sql.Stmt

	mu     sync.Mutex
	active map[actorKey]*activation

	activations atomic.Int64 // activations ever made; for stats and tests

	stop    context.CancelFunc
	stopCtx context.Context
	wg      sync.WaitGroup
	// turns is held for reading by every turn and for writing by Close, which so
	// waits for the turns under way and keeps new ones from starting.
	turns  sync.RWMutex
	closed atomic.Bool
}

type actorKey struct{ typ, id string }

// activation is an actor in memory: its turn lock and the state it has read so far.
type activation struct {
	turn     chan struct{} // holds one token while a turn runs; a channel so waiting honours ctx
	refs     int           // callers holding or waiting for the turn; guarded by Host.mu
	lastUsed time.Time     // guarded by Host.mu
	// cache maps a state key to its stored value; a nil value records that the key
	// is absent. Only the turn holder touches it.
	cache map[string][]byte
	// complete reports that cache holds every stored key (see load), so that a
	// key it lacks is absent. Only the turn holder touches it.
	complete bool
}

// Open starts a host for the given actor types with its database in dir (created if
// missing). Reminders that came due while no host was running fire promptly.
func Open(ctx context.Context, dir string, types []actor.Type, opts Options) (*Host, error) {
	opts.setDefaults()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	writer, reader, err := openDB(ctx, filepath.Join(dir, DBFile))
	if err != nil {
		return nil, err
	}
	h := &Host{
		opts:   opts,
		log:    opts.Logger,
		types:  make(map[string]actor.Type, len(types)),
		writer: writer,
		reader: reader,
		active: make(map[actorKey]*activation),
	}
	for _, t := range types {
		if t.Name == "" {
			return nil, errors.New("actor type without a name")
		}
		h.types[t.Name] = t
	}
	h.stopCtx, h.stop = context.WithCancel(context.Background())
	if h.events, err = newEventLog(ctx, reader); err != nil {
		h.closeDB()
		return nil, err
	}
	if h.readState, err = reader.PrepareContext(ctx, `SELECT key, value FROM actor_state WHERE actor_type = ? AND actor_id = ?`); err != nil {
		h.closeDB()
		return nil, fmt.Errorf("prepare state reads: %w", err)
	}
	h.sched = newScheduler(h)
	if err := h.sched.load(ctx); err != nil {
		h.closeDB()
		return nil, err
	}
	h.commit, err = newCommitter(ctx, writer, h.log, h.committed)
	if err != nil {
		h.closeDB()
		return nil, err
	}
	h.events.last.Store(h.commit.nextEventID - 1)
	h.wg.Add(3)
	go func() { defer h.wg.Done(); h.trimEvents(h.stopCtx) }()
	go func() { defer h.wg.Done(); h.sched.run(h.stopCtx) }()
	go func() { defer h.wg.Done(); h.reapIdle(h.stopCtx) }()
	return h, nil
}

// Close stops firing reminders, waits for running turns to finish and closes the
// database. Calls after Close fail with errs.Unavailable.
func (h *Host) Close() error {
	if !h.closed.CompareAndSwap(false, true) {
		return nil
	}
	h.stop()
	h.wg.Wait()
	h.turns.Lock() // waits for the turns under way; later ones see closed
	defer h.turns.Unlock()
	h.commit.close()
	h.events.close()
	return h.closeDB()
}

func (h *Host) closeDB() error {
	return errors.Join(h.writer.Close(), h.reader.Close())
}

// Events returns the host's event log.
func (h *Host) Events() *EventLog { return &EventLog{h.events} }

// Ready reports whether the host can take calls.
func (h *Host) Ready(ctx context.Context) error {
	if h.closed.Load() {
		return errs.E(errs.Unavailable, "runtime is shutting down")
	}
	return h.reader.PingContext(ctx)
}

// Stats describes the host's actors at one moment.
type Stats struct {
	// Active is how many actors are in memory now.
	Active int `json:"active_actors"`
	// Activations counts activations since Open.
	Activations int64 `json:"activations"`
	// Reminders is how many reminders are registered.
	Reminders int `json:"reminders"`
}

// Stats returns the host's current figures.
func (h *Host) Stats() Stats {
	h.mu.Lock()
	n := len(h.active)
	h.mu.Unlock()
	return Stats{Active: n, Activations: h.activations.Load(), Reminders: h.sched.count()}
}

// Invoke calls method on the actor (actorType, actorID) with input, in a turn of its
// own. It implements actor.Invoker.
func (h *Host) Invoke(ctx context.Context, actorType, actorID, method string, input []byte) ([]byte, error) {
	typ, ok := h.types[actorType]
	if !ok {
		return nil, errs.E(errs.NotFound, "no actor type %q", actorType)
	}
	m, ok := typ.Methods[method]
	if !ok {
		return nil, errs.E(errs.NotFound, "actor type %s has no method %q", actorType, method)
	}
	var out []byte
	err := h.inTurn(ctx, actorKey{actorType, actorID}, nil, func(t *turn) error {
		var err error
		out, err = m(ctx, t, input)
		return err
	})
	return out, err
}

// Deactivate drops the actor's in-memory state so that its next call activates it
// again from the store, as the idle timeout would. It waits for a running turn to
// finish. It reports whether the actor was active.
func (h *Host) Deactivate(ctx context.Context, actorType, actorID string) (bool, error) {
	k := actorKey{actorType, actorID}
	a := h.acquire(k)
	select {
	case a.turn <- struct{}{}:
	case <-ctx.Done():
		h.release(k, a)
		return false, ctx.Err()
	}
	h.mu.Lock()
	a.refs--
	was := h.active[k] == a && a.cache != nil
	if a.refs == 0 {
		delete(h.active, k)
	}
	a.cache, a.complete = nil, false
	h.mu.Unlock()
	<-a.turn
	return was, nil
}

// inTurn runs f as a turn of the actor k and commits what it wrote when it succeeds.
// extra, when not nil, is added to the turn's change before commit (reminder
// bookkeeping). Panics in f become Internal errors.
func (h *Host) inTurn(ctx context.Context, k actorKey, extra func(*change), f func(*turn) error) (err error) {
	h.turns.RLock()
	defer h.turns.RUnlock()
	if h.closed.Load() {
		return errs.E(errs.Unavailable, "runtime is shutting down")
	}
	a := h.acquire(k)
	defer h.release(k, a)
	select {
	case a.turn <- struct{}{}:
	case <-ctx.Done():
		return errs.E(errs.Unavailable, "waiting for actor %s/%s: %v", k.typ, k.id, ctx.Err())
	}
	defer func() { <-a.turn }()
	if a.cache == nil {
		a.cache = make(map[string][]byte)
		h.activations.Add(1)
	}

	t := &turn{host: h, key: k, act: a, now: h.opts.Now()}
	t.Cache = a.cache
	t.Load = func(ctx context.Context, key string) ([]byte, error) { return h.load(ctx, k, a, key) }
	if err := actor.Guard(h.log, k.typ, k.id, func() error { return f(t) }); err != nil {
		return err
	}
	ch := t.change()
	if extra != nil {
		extra(ch)
	}
	if ch.empty() {
		return nil
	}
	if err := h.commit.commit(ctx, ch); err != nil {
		// The outcome of a commit whose wait was cut short is unknown: forget the
		// cache so that the next turn reads what is really stored.
		clear(a.cache)
		a.complete = false
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return errs.E(errs.Unavailable, "commit for actor %s/%s: %v", k.typ, k.id, err)
		}
		return fmt.Errorf("commit for actor %s/%s: %w", k.typ, k.id, err)
	}
	for _, w := range ch.state {
		a.cache[w.key] = w.value
	}
	return nil
}

func (h *Host) acquire(k actorKey) *activation {
	h.mu.Lock()
	defer h.mu.Unlock()
	a, ok := h.active[k]
	if !ok {
		a = &activation{turn: make(chan struct{}, 1)}
		h.active[k] = a
	}
	a.refs++
	return a
}

func (h *Host) release(k actorKey, a *activation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a.refs--
	a.lastUsed = h.opts.Now()
}

// committed runs in the committer, in commit order, after a transaction is durable.
func (h *Host) committed(changes []*change) {
	var evs []event.Event
	for _, ch := range changes {
		h.sched.applied(ch)
		for i, e := range ch.events {
			evs = append(evs, event.Event{ID: ch.firstEventID + int64(i), Topic: e.topic, Type: e.typ,
				Time: e.time, Source: ch.source, Data: e.data})
		}
	}
	if len(evs) > 0 {
		h.events.advance(evs)
	}
}

// trimEvents deletes events older than the retention, a little at a time so that
// the writer is never held for long.
func (h *Host) trimEvents(ctx context.Context) {
	every(ctx, h.opts.EventRetention/10, func() {
		cutoff := h.opts.Now().Add(-h.opts.EventRetention).UnixNano()
		for ctx.Err() == nil {
			n, err := h.trimBatch(ctx, cutoff, 1000)
			if err != nil {
				if ctx.Err() == nil {
					h.log.Warn("trim event log", "err", err)
				}
				break
			}
			if n < 1000 {
				break
			}
		}
	})
}

// every runs fn each period (at most a minute, at least 10 ms) until ctx ends.
func every(ctx context.Context, period time.Duration, fn func()) {
	tick := time.NewTicker(max(min(period, time.Minute), 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		fn()
	}
}

// trimBatch deletes up to limit of the oldest events published before cutoff, and
// records the newest id deleted so that ids never go back.
func (h *Host) trimBatch(ctx context.Context, cutoff int64, limit int) (int64, error) {
	tx, err := h.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var through sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(id) FROM (SELECT id FROM events WHERE time < ? ORDER BY id LIMIT ?)`, cutoff, limit).Scan(&through); err != nil {
		return 0, err
	}
	if !through.Valid {
		return 0, nil
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE id <= ?`, through.Int64)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO event_log (one, trimmed_through) VALUES (1, ?)
		ON CONFLICT (one) DO UPDATE SET trimmed_through = max(trimmed_through, excluded.trimmed_through)`, through.Int64); err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	h.events.trimmed(through.Int64)
	return n, nil
}

// reapIdle deactivates actors idle for longer than the idle timeout.
func (h *Host) reapIdle(ctx context.Context) {
	every(ctx, h.opts.IdleTimeout/2, func() {
		cutoff := h.opts.Now().Add(-h.opts.IdleTimeout)
		h.mu.Lock()
		for k, a := range h.active {
			if a.refs == 0 && a.lastUsed.Before(cutoff) {
				delete(h.active, k)
			}
		}
		h.mu.Unlock()
	})
}
