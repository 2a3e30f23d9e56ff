package wfbackend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"

	"github.com/microsoft/durabletask-go/backend"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// schemaVersion is stored in PRAGMA user_version so that a later schema change
// can recognise (and migrate) files written by this one. Versions 1 and 2 also
// kept each scheduled activity in an activities table, written when the
// activity was scheduled and deleted when its result was consumed; version 3
// finds the activities without a result in the history instead (see
// loadState), and Open drops the table of an older file. Versions 1 to 3 kept
// the history in a table keyed by instance; version 4 keeps it in the order it
// was written (see the schema), and Open rewrites an older file's history.
const schemaVersion = 4

// terminalStatuses lists, for SQL, the statuses isTerminal calls terminal.
const terminalStatuses = "(1, 3, 4, 5)"

// schema holds the durable state. Times are Unix nanoseconds (integers compare
// and index cheaply and round-trip exactly). Statuses are the numeric values of
// the OrchestrationStatus protobuf enum, which is a stable wire contract.
//
// Tables keyed by instance first are WITHOUT ROWID so that one B-tree serves
// both point deletes (instance, id) and per-instance range deletes (purge).
// No lock columns exist: locks live only in memory (see doc.go, Ownership).
const schema = `
CREATE TABLE IF NOT EXISTS instances (
	instance_id   TEXT    NOT NULL PRIMARY KEY,
	name          TEXT    NOT NULL,
	version       TEXT    NOT NULL DEFAULT '',
	execution_id  TEXT    NOT NULL DEFAULT '',
	parent_id     TEXT,
	status        INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	completed_at  INTEGER,
	input         TEXT,
	output        TEXT,
	custom_status TEXT,
	failure       BLOB
) WITHOUT ROWID;

-- unfinished indexes the instances whose status is not terminal (COMPLETED 1,
-- FAILED 3, CANCELED 4, TERMINATED 5; see isTerminal), so that start-up finds
-- their work without reading every instance ever run.
CREATE INDEX IF NOT EXISTS unfinished ON instances (instance_id) WHERE status NOT IN ` + terminalStatuses + `;

-- history holds an instance's events in chunks, one row per orchestration turn:
-- seq is the index of the chunk's first event in the instance's history, so
-- ordering by seq yields the events in order. A chunk is a sequence of
-- length-prefixed protobuf HistoryEvent messages (see codec.go). One row per
-- turn instead of one per event keeps a turn's history write to one insert.
--
-- Rows are stored in the order they were written (the rowid), and found by
-- instance through history_by_instance. A commit's chunks, one per instance that
-- took a turn, then fill the table's last pages together instead of one page
-- per instance, and only the index's small entries are spread by instance:
-- under load that halved the pages a commit writes to the WAL.
CREATE TABLE IF NOT EXISTS history (
	id          INTEGER PRIMARY KEY,
	instance_id TEXT    NOT NULL,
	seq         INTEGER NOT NULL,
	events      BLOB    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS history_by_instance ON history (instance_id, seq);

-- inbox holds events not yet consumed by an orchestration turn: new instances'
-- ExecutionStarted, activity results, external events, messages from other
-- instances and durable timers. due_at is 0 for events visible at once and the
-- fire time for timers (and for delayed starts).
CREATE TABLE IF NOT EXISTS inbox (
	instance_id TEXT    NOT NULL,
	id          INTEGER NOT NULL,
	due_at      INTEGER NOT NULL,
	event       BLOB    NOT NULL,
	PRIMARY KEY (instance_id, id)
) WITHOUT ROWID;
`

// writerStmts are the statements the committer runs, prepared once on the
// single writer connection.
type writerStmts struct {
	begin, commit, rollback *sql.Stmt

	selectStatus   *sql.Stmt
	insertInstance *sql.Stmt
	updateInstance *sql.Stmt
	deleteInstance *sql.Stmt

	insertHistory   *sql.Stmt
	deleteHistory   *sql.Stmt
	insertInbox     *sql.Stmt
	deleteInbox     *sql.Stmt
	deleteInstInbox *sql.Stmt
}

// namedStmt pairs a statement field with its SQL, so that preparing and
// closing walk one list.
type namedStmt struct {
	dst **sql.Stmt
	sql string
}

func (s *writerStmts) list() []namedStmt {
	return []namedStmt{
		// IMMEDIATE takes the write lock at BEGIN: with one writer it never
		// waits, and it turns a foreign writer (see doc.go, Ownership) into a
		// clear SQLITE_BUSY at BEGIN instead of a failure halfway through.
		{&s.begin, `BEGIN IMMEDIATE`},
		{&s.commit, `COMMIT`},
		{&s.rollback, `ROLLBACK`},
		{&s.selectStatus, `SELECT status FROM instances WHERE instance_id = ?`},
		{&s.insertInstance, `INSERT INTO instances
			(instance_id, name, version, execution_id, parent_id, status, created_at, updated_at, input)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (instance_id) DO NOTHING`},
		// One statement for every turn: the CASE arms keep the columns a turn
		// does not change, so there is one prepared statement, not a family.
		{&s.updateInstance, `UPDATE instances SET
			status = ?2,
			updated_at = ?3,
			custom_status = COALESCE(?4, custom_status),
			input = CASE WHEN ?5 THEN ?6 ELSE input END,
			created_at = COALESCE(?7, created_at),
			completed_at = ?8,
			output = ?9,
			failure = ?10
			WHERE instance_id = ?1`},
		{&s.deleteInstance, `DELETE FROM instances WHERE instance_id = ?`},
		{&s.insertHistory, `INSERT INTO history (instance_id, seq, events) VALUES (?, ?, ?)`},
		{&s.deleteHistory, `DELETE FROM history WHERE instance_id = ?`},
		{&s.insertInbox, `INSERT INTO inbox (instance_id, id, due_at, event) VALUES (?, ?, ?, ?)`},
		{&s.deleteInbox, `DELETE FROM inbox WHERE instance_id = ? AND id = ?`},
		{&s.deleteInstInbox, `DELETE FROM inbox WHERE instance_id = ?`},
	}
}

// readerStmts are the queries served by the read pool, so that reads never
// wait behind the committer.
type readerStmts struct {
	metadata *sql.Stmt
	history  *sql.Stmt
}

// dsn builds a modernc.org/sqlite DSN. The pragmas run on every new connection
// of a pool, which is what per-connection settings (synchronous, busy_timeout,
// cache_size) need.
//
// A new file gets 16 KiB pages, set before anything else touches it: a commit
// writes every page it changed as one WAL frame, at two system calls per frame
// (and one more to checkpoint it), and the rows of the instances running
// together share fewer, larger pages. In a taskagent bench run that took about
// a tenth off the server's CPU time. Journal mode goes in the _journal_mode
// key, which the driver applies after the _pragma list: switching to WAL fixes
// the page size of a new file.
func dsn(path string, pragmas ...string) string {
	v := url.Values{}
	v.Set("_journal_mode", "WAL")
	v.Add("_pragma", "page_size(16384)")
	for _, p := range pragmas {
		v.Add("_pragma", p)
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + v.Encode()
}

// openStore opens the writer connection and the read pool, creates the schema
// and prepares the statements.
func (b *Backend) openStore(ctx context.Context, path string) error {
	wdb, err := sql.Open("sqlite", dsn(path,
		"busy_timeout(5000)",
		// FULL: every acknowledged commit survives power loss, not only a
		// process crash. Group commit pays for the extra fsync.
		"synchronous(FULL)",
		"cache_size(-32000)",
		"temp_store(MEMORY)",
	))
	if err != nil {
		return fmt.Errorf("open writer: %w", err)
	}
	// One writer: SQLite serialises writers anyway, and one connection lets
	// the committer keep statements prepared and transactions explicit.
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	b.wdb = wdb

	conn, err := wdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open writer: %w", err)
	}
	b.wconn = conn

	var version int
	if err := conn.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("database schema version %d is newer than this program's %d", version, schemaVersion)
	}
	if err := createSchema(ctx, conn, version); err != nil {
		return err
	}
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("read journal mode: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("journal mode is %q, want wal (is the path on a file system that supports WAL?)", mode)
	}

	for _, s := range b.w.list() {
		stmt, err := conn.PrepareContext(ctx, s.sql)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", s.sql, err)
		}
		*s.dst = stmt
	}

	rdb, err := sql.Open("sqlite", dsn(path,
		"busy_timeout(5000)",
		"query_only(1)",
		"cache_size(-8000)",
	))
	if err != nil {
		return fmt.Errorf("open readers: %w", err)
	}
	rdb.SetMaxOpenConns(b.opts.readers)
	rdb.SetMaxIdleConns(b.opts.readers)
	b.rdb = rdb
	if b.r.metadata, err = rdb.PrepareContext(ctx, `SELECT name, status, created_at, updated_at,
		input, output, custom_status, failure FROM instances WHERE instance_id = ?`); err != nil {
		return fmt.Errorf("prepare metadata query: %w", err)
	}
	if b.r.history, err = rdb.PrepareContext(ctx,
		`SELECT events FROM history WHERE instance_id = ? ORDER BY seq`); err != nil {
		return fmt.Errorf("prepare history query: %w", err)
	}
	return nil
}

// createSchema brings a file of the given schema version (0: new) to
// schemaVersion in one transaction, so that a crash leaves it as it was or
// wholly migrated.
func createSchema(ctx context.Context, conn *sql.Conn, version int) error {
	old := func(before int) bool { return version > 0 && version < before }
	var stmts []string
	if old(3) {
		// The activities table of versions 1 and 2 only repeated what the
		// history holds.
		stmts = append(stmts, `DROP TABLE IF EXISTS activities`)
	}
	if old(4) {
		// Versions 1 to 3 kept the history keyed by instance: its rows move
		// to the table the schema creates, in instance order (the order they
		// were written in is not recorded).
		stmts = append(stmts, `ALTER TABLE history RENAME TO history_v3`)
	}
	stmts = append(stmts, schema)
	if old(4) {
		stmts = append(stmts,
			`INSERT INTO history (instance_id, seq, events)
				SELECT instance_id, seq, events FROM history_v3 ORDER BY instance_id, seq`,
			`DROP TABLE history_v3`)
	}
	stmts = append(stmts, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion))

	what := "create schema"
	if old(schemaVersion) {
		what = fmt.Sprintf("migrate schema version %d to %d", version, schemaVersion)
	}
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			_, _ = conn.ExecContext(ctx, `ROLLBACK`)
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		_, _ = conn.ExecContext(ctx, `ROLLBACK`)
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// closeStore closes statements and connections; errors are joined so that one
// failure does not leak the rest.
func (b *Backend) closeStore() error {
	var errs []error
	for _, s := range b.w.list() {
		if *s.dst != nil {
			errs = append(errs, (*s.dst).Close())
		}
	}
	for _, s := range []*sql.Stmt{b.r.metadata, b.r.history} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if b.wconn != nil {
		errs = append(errs, b.wconn.Close())
	}
	if b.wdb != nil {
		errs = append(errs, b.wdb.Close())
	}
	if b.rdb != nil {
		errs = append(errs, b.rdb.Close())
	}
	return errors.Join(errs...)
}

// loadedEvent is an inbox row read at start-up.
type loadedEvent struct {
	instanceID string
	id         int64
	dueAt      int64
	e          *backend.HistoryEvent
}

// loadState rebuilds the in-memory queues from the database. Nothing is locked
// on disk, so everything found is available at once: this is the crash
// recovery. The activities to run are those a running instance's history
// scheduled and holds no result for, in the history or the inbox.
func (b *Backend) loadState(ctx context.Context) error {
	if err := b.wconn.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM inbox`).Scan(&b.nextID); err != nil {
		return fmt.Errorf("read max id: %w", err)
	}

	rows, err := b.wconn.QueryContext(ctx, `SELECT instance_id, id, due_at, event FROM inbox ORDER BY id`)
	if err != nil {
		return fmt.Errorf("load inbox: %w", err)
	}
	var inbox []loadedEvent
	for rows.Next() {
		var (
			le  loadedEvent
			buf []byte
		)
		if err := rows.Scan(&le.instanceID, &le.id, &le.dueAt, &buf); err != nil {
			rows.Close()
			return fmt.Errorf("load inbox: %w", err)
		}
		if le.e, err = unmarshalEvent(buf); err != nil {
			rows.Close()
			return fmt.Errorf("load inbox event %s/%d: %w", le.instanceID, le.id, err)
		}
		inbox = append(inbox, le)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("load inbox: %w", err)
	}

	acts, err := b.unfinishedActivities(ctx, inbox)
	if err != nil {
		return err
	}

	now := b.now().UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	// Timers first: a delayed ExecutionStarted must gate its instance before
	// the instance's other (already visible) events make it runnable.
	for pass := 0; pass < 2; pass++ {
		for _, le := range inbox {
			if (pass == 0) != (le.dueAt > now) {
				continue
			}
			b.deliverLocked(le.instanceID, inboxEvent{id: le.id, e: le.e}, le.dueAt, now)
		}
	}
	for _, a := range acts {
		b.nextID++
		a.id = b.nextID
		b.actQueue.push(a)
	}
	b.log.Info("workflow store loaded", "path", b.path,
		"inbox_events", len(inbox), "activities", len(acts), "timers", b.timers.Len())
	return nil
}

// unfinishedActivities reads the history of every instance that has not
// finished and returns the activities it scheduled that have no result yet,
// neither in the history nor among the inbox events, in the order they were
// scheduled. Their ids are left to the caller.
func (b *Backend) unfinishedActivities(ctx context.Context, inbox []loadedEvent) ([]*activity, error) {
	rows, err := b.wconn.QueryContext(ctx,
		`SELECT instance_id FROM instances INDEXED BY unfinished WHERE status NOT IN `+terminalStatuses)
	if err != nil {
		return nil, fmt.Errorf("load instances: %w", err)
	}
	var running []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load instances: %w", err)
		}
		running = append(running, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("load instances: %w", err)
	}

	type taskKey struct {
		instanceID string
		taskID     int32
	}
	done := make(map[taskKey]bool)
	for _, le := range inbox {
		if id, ok := resultOf(le.e); ok {
			done[taskKey{le.instanceID, id}] = true
		}
	}
	var acts []*activity
	for _, id := range running {
		history, err := b.readHistory(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("load activities: %w", err)
		}
		for _, e := range history {
			if tid, ok := resultOf(e); ok {
				done[taskKey{id, tid}] = true
			}
		}
		for _, e := range history {
			if e.GetTaskScheduled() != nil && !done[taskKey{id, e.GetEventId()}] {
				acts = append(acts, &activity{instanceID: id, e: e})
			}
		}
	}
	return acts, nil
}

// resultOf reports whether e is an activity's result, and for which
// TaskScheduled event.
func resultOf(e *backend.HistoryEvent) (taskID int32, ok bool) {
	if c := e.GetTaskCompleted(); c != nil {
		return c.GetTaskScheduledId(), true
	}
	if f := e.GetTaskFailed(); f != nil {
		return f.GetTaskScheduledId(), true
	}
	return 0, false
}
