package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

const schema = `
CREATE TABLE IF NOT EXISTS actor_state (
	actor_type TEXT NOT NULL,
	actor_id   TEXT NOT NULL,
	key        TEXT NOT NULL,
	value      BLOB NOT NULL,
	PRIMARY KEY (actor_type, actor_id, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS reminders (
	actor_type TEXT    NOT NULL,
	actor_id   TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	due        INTEGER NOT NULL, -- Unix nanoseconds
	period     INTEGER NOT NULL, -- nanoseconds; 0 fires once
	data       BLOB,
	gen        INTEGER NOT NULL, -- which registration this is; see reminders.go
	PRIMARY KEY (actor_type, actor_id, name)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS events (
	id     INTEGER PRIMARY KEY,
	topic  TEXT    NOT NULL,
	type   TEXT    NOT NULL,
	time   INTEGER NOT NULL, -- Unix nanoseconds
	source TEXT    NOT NULL,
	data   BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_topic ON events (topic, id);

-- trimmed_through is the id of the newest event trimmed from the log: ids never
-- go back below it, even when every event has been trimmed.
CREATE TABLE IF NOT EXISTS event_log (
	one             INTEGER PRIMARY KEY CHECK (one = 1),
	trimmed_through INTEGER NOT NULL
);
`

// openDB opens the SQLite database at path twice: a single writer connection, used
// only by the committer, and a pool of read-only connections. WAL lets readers run
// beside the writer; synchronous=FULL makes every committed transaction survive a
// power cut, and group commit (committer.go) is what keeps that affordable.
func openDB(ctx context.Context, path string) (writer, reader *sql.DB, err error) {
	dsn := func(extra ...string) string {
		q := url.Values{}
		// 16 KiB pages for a new file, as in the workflow store (see
		// wfbackend's dsn): the driver applies _journal_mode after the
		// _pragma list, so page_size comes first.
		q.Set("_journal_mode", "WAL")
		q.Add("_pragma", "page_size(16384)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "busy_timeout(10000)")
		for _, p := range extra {
			q.Add("_pragma", p)
		}
		return "file:" + path + "?" + q.Encode()
	}
	writer, err = sql.Open("sqlite", dsn())
	if err != nil {
		return nil, nil, err
	}
	writer.SetMaxOpenConns(1)
	writer.SetConnMaxIdleTime(0)
	writer.SetConnMaxLifetime(0)
	if _, err := writer.ExecContext(ctx, schema); err != nil {
		writer.Close()
		return nil, nil, fmt.Errorf("create schema in %s: %w", path, err)
	}
	reader, err = sql.Open("sqlite", dsn("query_only(1)"))
	if err != nil {
		writer.Close()
		return nil, nil, err
	}
	reader.SetMaxOpenConns(8)
	reader.SetMaxIdleConns(8)
	reader.SetConnMaxIdleTime(0)
	if err := reader.PingContext(ctx); err != nil {
		writer.Close()
		reader.Close()
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	return writer, reader, nil
}
