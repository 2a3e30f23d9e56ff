package wfbackend

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/microsoft/durabletask-go/task"
)

// A file written by schema version 1, whose activities rows held whole
// TaskScheduled events, opens with its scheduled activity intact.
func TestMigrateSchemaV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.db")
	ctx := context.Background()
	ex := task.NewTaskExecutor(contractRegistry(t))

	be1, awi := openWithActivity(t, path, ex)
	if err := be1.Close(); err != nil {
		t.Fatal(err)
	}

	// Turn the file into what version 1 wrote.
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	event, err := marshalEvent(awi.NewEvent)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DROP TABLE activities`, nil},
		{`CREATE TABLE activities (instance_id TEXT NOT NULL, id INTEGER NOT NULL, event BLOB NOT NULL,
			PRIMARY KEY (instance_id, id)) WITHOUT ROWID`, nil},
		{`INSERT INTO activities (instance_id, id, event) VALUES (?, ?, ?)`, []any{"act", awi.SequenceNumber, event}},
		{`PRAGMA user_version = 1`, nil},
	} {
		if _, err := db.Exec(q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	be2 := openAt(t, path, WithWorkItemWait(0))
	var version int
	if err := be2.wconn.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil || version != schemaVersion {
		t.Fatalf("schema version after migration = %d, %v; want %d", version, err, schemaVersion)
	}
	again, err := be2.GetActivityWorkItem(ctx)
	if err != nil || again.InstanceID != "act" || again.NewEvent.GetEventId() != awi.NewEvent.GetEventId() ||
		again.NewEvent.GetTaskScheduled().GetName() != awi.NewEvent.GetTaskScheduled().GetName() {
		t.Fatalf("activity after migration = %v, %v; want %v", again, err, awi.NewEvent)
	}
	finishActivity(t, be2, ex, again)
}

// A new file gets the page size dsn asks for, and WAL.
func TestNewFileSettings(t *testing.T) {
	be := openTest(t)
	var pageSize int
	var mode string
	ctx := context.Background()
	if err := be.wconn.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil || pageSize != 16384 {
		t.Errorf("page_size = %d, %v; want 16384", pageSize, err)
	}
	if err := be.wconn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}
