package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// A change is everything one successful turn wrote: state, reminders and events.
// The committer makes each change durable as a whole or not at all.
type change struct {
	actorType, actorID string
	state              []stateWrite
	reminders          []reminderWrite
	events             []eventWrite

	// Filled in by the committer for the events: the id of the first (the
	// others follow it) and their source, "type/id".
	firstEventID int64
	source       string
}

type stateWrite struct {
	key   string
	value []byte // nil deletes the key
}

// reminderWrite sets or deletes a reminder. With ifGen set, it applies only while
// the stored reminder is still that registration: a callback that finished must not
// delete a reminder that was registered again in the meantime.
type reminderWrite struct {
	name   string
	delete bool
	due    time.Time
	period time.Duration
	data   []byte
	gen    int64
	ifGen  int64 // 0: unconditional
}

type eventWrite struct {
	topic, typ string
	time       time.Time
	data       []byte
}

type commitRequest struct {
	c    *change
	done chan error
}

// committer owns the writer connection. Turns hand it their changes; it commits
// every change that arrived while the previous transaction was being written in one
// transaction (group commit), so a burst of turns on different actors shares one
// fsync while each caller still returns only once its own change is durable.
type committer struct {
	db       *sql.DB
	log      *slog.Logger
	requests chan commitRequest
	stopped  chan struct{}

	// stmt holds the committer's statements, prepared once: every commit runs
	// them, and preparing is most of a small statement's cost.
	stmt struct {
		deleteState       *sql.Stmt
		upsertState       *sql.Stmt
		deleteReminderGen *sql.Stmt
		deleteReminder    *sql.Stmt
		moveReminder      *sql.Stmt
		upsertReminder    *sql.Stmt
		insertEvent       *sql.Stmt
	}

	nextEventID int64 // owned by the run goroutine
	maxBatch    int
	onCommit    func([]*change) // called in commit order, from the run goroutine
}

func newCommitter(ctx context.Context, db *sql.DB, log *slog.Logger, onCommit func([]*change)) (*committer, error) {
	var last sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(m) FROM (
		SELECT MAX(id) AS m FROM events UNION ALL SELECT trimmed_through FROM event_log)`).Scan(&last); err != nil {
		return nil, fmt.Errorf("read last event id: %w", err)
	}
	c := &committer{
		db:          db,
		log:         log,
		requests:    make(chan commitRequest, 1024),
		stopped:     make(chan struct{}),
		nextEventID: last.Int64 + 1,
		maxBatch:    512,
		onCommit:    onCommit,
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&c.stmt.deleteState, `DELETE FROM actor_state WHERE actor_type = ? AND actor_id = ? AND key = ?`},
		{&c.stmt.upsertState, `INSERT INTO actor_state (actor_type, actor_id, key, value) VALUES (?, ?, ?, ?)
			ON CONFLICT (actor_type, actor_id, key) DO UPDATE SET value = excluded.value`},
		{&c.stmt.deleteReminderGen, `DELETE FROM reminders WHERE actor_type = ? AND actor_id = ? AND name = ? AND gen = ?`},
		{&c.stmt.deleteReminder, `DELETE FROM reminders WHERE actor_type = ? AND actor_id = ? AND name = ?`},
		{&c.stmt.moveReminder, `UPDATE reminders SET due = ? WHERE actor_type = ? AND actor_id = ? AND name = ? AND gen = ?`},
		{&c.stmt.upsertReminder, `INSERT INTO reminders (actor_type, actor_id, name, due, period, data, gen) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (actor_type, actor_id, name) DO UPDATE SET due = excluded.due, period = excluded.period, data = excluded.data, gen = excluded.gen`},
		{&c.stmt.insertEvent, `INSERT INTO events (id, topic, type, time, source, data) VALUES (?, ?, ?, ?, ?, ?)`},
	} {
		var err error
		if *p.stmt, err = db.PrepareContext(ctx, p.sql); err != nil {
			return nil, fmt.Errorf("prepare %q: %w", p.sql, err)
		}
	}
	go c.run()
	return c, nil
}

// commit makes ch durable. It returns when ch is committed or has failed; a
// cancelled ctx stops the wait but not a commit already under way, so the caller
// must treat a ctx error as "outcome unknown".
func (c *committer) commit(ctx context.Context, ch *change) error {
	req := commitRequest{c: ch, done: make(chan error, 1)}
	select {
	case c.requests <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stopped:
		return errClosed
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops the committer after the changes already handed to it are committed.
func (c *committer) close() {
	close(c.requests)
	<-c.stopped
}

// commitLinger is how long a batch that has gathered more than one change
// waits for more before it commits. A commit writes every page it changed
// whole, and under load the same few pages (the tail of the event log, the
// rows of the tasks in flight) are in every commit, so fewer, larger commits
// write less: in three alternating 10,000-task bench runs the server's CPU
// time fell from 18.4–21.3 s to 17.9–19.1 s and its disk writes by 5 %. A
// change that arrives alone, as when the server is idle, commits at once.
const commitLinger = time.Millisecond

func (c *committer) run() {
	defer close(c.stopped)
	batch := make([]commitRequest, 0, c.maxBatch)
	linger := time.NewTimer(commitLinger)
	linger.Stop()
	for req := range c.requests {
		batch = c.gather(append(batch[:0], req), nil)
		if len(batch) > 1 {
			linger.Reset(commitLinger)
			batch = c.gather(batch, linger.C)
			linger.Stop()
		}
		c.commitBatch(batch)
	}
}

// gather adds requests to batch until it is full or the requests end, and,
// with until nil, until none is waiting, or else until until fires.
func (c *committer) gather(batch []commitRequest, until <-chan time.Time) []commitRequest {
	for len(batch) < c.maxBatch {
		var (
			r  commitRequest
			ok bool
		)
		if until == nil {
			select {
			case r, ok = <-c.requests:
			default:
				return batch
			}
		} else {
			select {
			case r, ok = <-c.requests:
			case <-until:
				return batch
			}
		}
		if !ok {
			return batch
		}
		batch = append(batch, r)
	}
	return batch
}

func (c *committer) commitBatch(batch []commitRequest) {
	changes := make([]*change, len(batch))
	for i, r := range batch {
		changes[i] = r.c
	}
	err := c.write(changes)
	if err == nil {
		c.onCommit(changes)
		for _, r := range batch {
			r.done <- nil
		}
		return
	}
	if len(batch) == 1 {
		batch[0].done <- err
		return
	}
	// One change may have broken the whole transaction; commit them one at a time
	// so that only that one fails.
	c.log.Warn("group commit failed; committing its changes one by one", "changes", len(batch), "err", err)
	for _, r := range batch {
		err := c.write([]*change{r.c})
		if err == nil {
			c.onCommit([]*change{r.c})
		}
		r.done <- err
	}
}

// write commits changes in one transaction, assigning event ids in order.
func (c *committer) write(changes []*change) (err error) {
	ctx := context.Background()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	nextID := c.nextEventID
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	for _, ch := range changes {
		for _, w := range ch.state {
			if w.value == nil {
				_, err = tx.StmtContext(ctx, c.stmt.deleteState).ExecContext(ctx,
					ch.actorType, ch.actorID, w.key)
			} else {
				_, err = tx.StmtContext(ctx, c.stmt.upsertState).ExecContext(ctx,
					ch.actorType, ch.actorID, w.key, w.value)
			}
			if err != nil {
				return fmt.Errorf("write state %s/%s %q: %w", ch.actorType, ch.actorID, w.key, err)
			}
		}
		for _, r := range ch.reminders {
			switch {
			case r.delete && r.ifGen != 0:
				_, err = tx.StmtContext(ctx, c.stmt.deleteReminderGen).ExecContext(ctx,
					ch.actorType, ch.actorID, r.name, r.ifGen)
			case r.delete:
				_, err = tx.StmtContext(ctx, c.stmt.deleteReminder).ExecContext(ctx,
					ch.actorType, ch.actorID, r.name)
			case r.ifGen != 0:
				_, err = tx.StmtContext(ctx, c.stmt.moveReminder).ExecContext(ctx,
					r.due.UnixNano(), ch.actorType, ch.actorID, r.name, r.ifGen)
			default:
				_, err = tx.StmtContext(ctx, c.stmt.upsertReminder).ExecContext(ctx,
					ch.actorType, ch.actorID, r.name, r.due.UnixNano(), int64(r.period), r.data, r.gen)
			}
			if err != nil {
				return fmt.Errorf("write reminder %s/%s %q: %w", ch.actorType, ch.actorID, r.name, err)
			}
		}
		ch.firstEventID = nextID
		if len(ch.events) > 0 {
			ch.source = ch.actorType + "/" + ch.actorID
		}
		for _, e := range ch.events {
			_, err = tx.StmtContext(ctx, c.stmt.insertEvent).ExecContext(ctx,
				nextID, e.topic, e.typ, e.time.UnixNano(), ch.source, e.data)
			if err != nil {
				return fmt.Errorf("append event %s: %w", e.typ, err)
			}
			nextID++
		}
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	c.nextEventID = nextID
	return nil
}

var errClosed = errors.New("embedded runtime is closed")
