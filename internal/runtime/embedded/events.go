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

func (l *eventLog) advance(last int64) {
	l.last.Store(last)
	l.mu.Lock()
	if !l.closed {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	l.mu.Unlock()
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
// topic, or on every topic when topic is "".
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
	stmt, args := e.l.readAll, []any{after, limit}
	if topic != "" {
		stmt, args = e.l.readTopic, []any{topic, after, limit}
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
