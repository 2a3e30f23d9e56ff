package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/event"
)

// tailSize is how many of the newest events the log keeps in memory, so that
// readers that keep up (event streams) read them there instead of querying
// the table after every commit.
const tailSize = 4096

// eventLog reads the events table, which turns append to in their commits. Readers
// that have caught up wait on a channel that is closed, and replaced, whenever a
// commit adds events: no polling.
type eventLog struct {
	db *sql.DB
	// readAll and readTopic are prepared once: readers page through the log all
	// the time.
	readAll, readTopic *sql.Stmt
	last               atomic.Int64 // id of the newest committed event

	mu      sync.Mutex
	changed chan struct{}
	closed  bool
	// tail holds the newest committed events, in id order. Ids have no gaps
	// (the committer numbers events one by one), so every event after
	// tail[0].ID-1 is in it. It holds at least the last tailSize, and at most
	// twice that before it is cut back.
	tail []event.Event
}

func newEventLog(ctx context.Context, db *sql.DB) (*eventLog, error) {
	l := &eventLog{db: db, changed: make(chan struct{})}
	var err error
	if l.readAll, err = db.PrepareContext(ctx, `SELECT id, topic, type, time, source, data FROM events WHERE id > ? ORDER BY id LIMIT ?`); err != nil {
		return nil, fmt.Errorf("prepare event reads: %w", err)
	}
	if l.readTopic, err = db.PrepareContext(ctx, `SELECT id, topic, type, time, source, data FROM events WHERE topic = ? AND id > ? ORDER BY id LIMIT ?`); err != nil {
		return nil, fmt.Errorf("prepare event reads: %w", err)
	}
	return l, nil
}

// advance records committed events, oldest first, and wakes the readers
// waiting for them.
func (l *eventLog) advance(evs []event.Event) {
	l.mu.Lock()
	l.tail = append(l.tail, evs...)
	if len(l.tail) > 2*tailSize {
		l.tail = append([]event.Event(nil), l.tail[len(l.tail)-tailSize:]...)
	}
	l.last.Store(evs[len(evs)-1].ID)
	if !l.closed {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	l.mu.Unlock()
}

// trimmed forgets the events up to id, which were deleted from the table.
func (l *eventLog) trimmed(id int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tail) > 0 && l.tail[0].ID <= id {
		n := min(int(id-l.tail[0].ID+1), len(l.tail))
		l.tail = append([]event.Event(nil), l.tail[n:]...)
	}
}

// fromTail returns what Read would, when the tail holds every event after
// after; ok is false when it does not.
func (l *eventLog) fromTail(topic string, after int64, limit int) (evs []event.Event, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tail) == 0 || after < l.tail[0].ID-1 {
		return nil, len(l.tail) == 0 && after >= l.last.Load()
	}
	for _, e := range l.tail[min(int(after-l.tail[0].ID+1), len(l.tail)):] {
		if len(evs) == limit {
			break
		}
		if topic == "" || e.Topic == topic {
			evs = append(evs, e)
		}
	}
	return evs, true
}

func (l *eventLog) close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.changed)
	}
	l.mu.Unlock()
}

// EventLog is the durable log of every event the host's actors published, in commit
// order. Delivery is at least once and in order: a reader keeps the id of the last
// event it handled and reads on after it.
type EventLog struct{ l *eventLog }

// Last returns the id of the newest event, 0 when there is none.
func (e *EventLog) Last() int64 { return e.l.last.Load() }

// Read returns up to limit events with an id greater than after, oldest first, on
// topic, or on every topic when topic is "". The events' Data may be shared
// with other readers: it must not be modified.
func (e *EventLog) Read(ctx context.Context, topic string, after int64, limit int) ([]event.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	e.l.mu.Lock()
	closed := e.l.closed
	e.l.mu.Unlock()
	if closed {
		return nil, errs.E(errs.Unavailable, "event log is closed")
	}
	if evs, ok := e.l.fromTail(topic, after, limit); ok {
		return evs, nil
	}
	return e.l.readTable(ctx, topic, after, limit)
}

// readTable is Read from the events table.
func (l *eventLog) readTable(ctx context.Context, topic string, after int64, limit int) ([]event.Event, error) {
	stmt, args := l.readAll, []any{after, limit}
	if topic != "" {
		stmt, args = l.readTopic, []any{topic, after, limit}
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, errs.E(errs.Unavailable, "read events: %v", err)
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		var ev event.Event
		var ns int64
		var data []byte
		if err := rows.Scan(&ev.ID, &ev.Topic, &ev.Type, &ns, &ev.Source, &data); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		ev.Time = time.Unix(0, ns).UTC()
		ev.Data = json.RawMessage(data)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(errs.Unavailable, "read events: %v", err)
	}
	return out, nil
}

// Wait blocks until an event with an id greater than after has been committed, ctx
// is done, or the host closes (errs.Unavailable).
func (e *EventLog) Wait(ctx context.Context, after int64) error {
	for {
		e.l.mu.Lock()
		ch, closed := e.l.changed, e.l.closed
		e.l.mu.Unlock()
		if e.l.last.Load() > after {
			return nil
		}
		if closed {
			return errs.E(errs.Unavailable, "event log is closed")
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
