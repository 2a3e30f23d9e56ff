package wfbackend

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/task"
	"google.golang.org/protobuf/proto"
)

// A file written by schema versions 1 to 3, which kept the history keyed by
// instance (and, in 1 and 2, scheduled activities in an activities table),
// opens with the history in the current table, whole and in order, without
// the old tables, and with its scheduled activity still to run: the history
// says so.
func TestMigrateOlderSchemas(t *testing.T) {
	for _, version := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "wf.db")
			ctx := context.Background()
			ex := task.NewTaskExecutor(contractRegistry(t))

			be1, awi := openWithActivity(t, path, ex)
			before, err := be1.readHistory(ctx, "act")
			if err != nil || len(before) == 0 {
				t.Fatalf("history before migration: %d events, %v", len(before), err)
			}
			if err := be1.Close(); err != nil {
				t.Fatal(err)
			}

			// Give the file the history table versions 1 to 3 wrote, and
			// the activities table of versions 1 and 2.
			db, err := sql.Open("sqlite", dsn(path))
			if err != nil {
				t.Fatal(err)
			}
			event, err := marshalEvent(awi.NewEvent)
			if err != nil {
				t.Fatal(err)
			}
			queries := map[int][]string{
				1: {`CREATE TABLE activities (instance_id TEXT NOT NULL, id INTEGER NOT NULL, event BLOB NOT NULL,
					PRIMARY KEY (instance_id, id)) WITHOUT ROWID`,
					`INSERT INTO activities (instance_id, id, event) VALUES (?1, ?2, ?3)`},
				2: {`CREATE TABLE activities (instance_id TEXT NOT NULL, id INTEGER NOT NULL, task_id INTEGER NOT NULL,
					PRIMARY KEY (instance_id, id)) WITHOUT ROWID`,
					`INSERT INTO activities (instance_id, id, task_id) VALUES (?1, ?2, ?4)`},
			}[version]
			queries = append(queries,
				`CREATE TABLE old_history (instance_id TEXT NOT NULL, seq INTEGER NOT NULL, events BLOB NOT NULL,
					PRIMARY KEY (instance_id, seq)) WITHOUT ROWID`,
				`INSERT INTO old_history SELECT instance_id, seq, events FROM history`,
				`DROP TABLE history`,
				`ALTER TABLE old_history RENAME TO history`,
				fmt.Sprintf(`PRAGMA user_version = %d`, version))
			for _, q := range queries {
				var args []any
				if strings.Contains(q, "?") {
					args = []any{"act", awi.SequenceNumber, event, awi.NewEvent.GetEventId()}
				}
				if _, err := db.Exec(q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			be2 := openAt(t, path, WithWorkItemWait(0))
			var got int
			if err := be2.wconn.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&got); err != nil || got != schemaVersion {
				t.Fatalf("schema version after migration = %d, %v; want %d", got, err, schemaVersion)
			}
			var tables int
			if err := be2.wconn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master
				WHERE name IN ('activities', 'old_history', 'history_v3')`).Scan(&tables); err != nil || tables != 0 {
				t.Fatalf("%d old tables after migration, %v; want none", tables, err)
			}
			var withRowid int
			if err := be2.wconn.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('history') WHERE name = 'id'`).Scan(&withRowid); err != nil || withRowid != 1 {
				t.Fatalf("history has %d id columns after migration, %v; want 1", withRowid, err)
			}
			// The history moved whole and in order (and the activity below
			// is found from it).
			after, err := be2.readHistory(ctx, "act")
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Fatalf("history after migration has %d events, want %d", len(after), len(before))
			}
			for i := range before {
				if !proto.Equal(after[i], before[i]) {
					t.Fatalf("history event %d after migration = %v, want %v", i, after[i], before[i])
				}
			}
			again, err := be2.GetActivityWorkItem(ctx)
			if err != nil || again.InstanceID != "act" || again.NewEvent.GetEventId() != awi.NewEvent.GetEventId() ||
				again.NewEvent.GetTaskScheduled().GetName() != awi.NewEvent.GetTaskScheduled().GetName() {
				t.Fatalf("activity after migration = %v, %v; want %v", again, err, awi.NewEvent)
			}
			finishActivity(t, be2, ex, again)
		})
	}
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

// The unfinished index and the start-up query name the terminal statuses by
// number (terminalStatuses); they must be the ones isTerminal names.
func TestUnfinishedIndexMatchesIsTerminal(t *testing.T) {
	be := openTest(t)
	for s := range api.OrchestrationStatus(8) {
		var unfinished bool
		if err := be.wconn.QueryRowContext(context.Background(), `SELECT ? NOT IN `+terminalStatuses, int32(s)).Scan(&unfinished); err != nil {
			t.Fatal(err)
		}
		if unfinished == isTerminal(s) {
			t.Errorf("status %v: unfinished in SQL %v, terminal in Go %v", s, unfinished, isTerminal(s))
		}
	}
}
