package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/actor/actortest"
	"github.com/taskagent/taskagent/internal/errs"
)

func openHost(t *testing.T, dir string, types []actor.Type, opts Options) *Host {
	t.Helper()
	if opts.ReminderRetry == 0 {
		opts.ReminderRetry = 20 * time.Millisecond
	}
	h, err := Open(t.Context(), dir, types, opts)
	if err != nil {
		t.Fatalf("open host: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestContract(t *testing.T) {
	actortest.Run(t, func(t *testing.T, types []actor.Type) actortest.Harness {
		h := openHost(t, t.TempDir(), types, Options{})
		return actortest.Harness{
			Invoker: h,
			Deactivate: func(ctx context.Context, typ, id string) error {
				was, err := h.Deactivate(ctx, typ, id)
				if err == nil && !was {
					return errors.New("actor was not active")
				}
				return err
			},
		}
	})
}

// ledger is a test actor that appends to a list and publishes each append.
func ledger() actor.Type {
	return actor.Type{
		Name: "Ledger",
		Methods: map[string]actor.Method{
			"Append": actor.Typed(func(ctx context.Context, t actor.Turn, v string) ([]string, error) {
				var list []string
				if _, err := t.Get(ctx, "list", &list); err != nil {
					return nil, err
				}
				list = append(list, v)
				if err := t.Set("list", list); err != nil {
					return nil, err
				}
				if err := t.Publish("ledger", "ledger.appended", map[string]string{"id": t.ActorID(), "value": v}); err != nil {
					return nil, err
				}
				if v == "fail" {
					return nil, errs.E(errs.Conflict, "fail requested")
				}
				return list, nil
			}),
			"List": actor.Typed(func(ctx context.Context, t actor.Turn, _ struct{}) ([]string, error) {
				var list []string
				_, err := t.Get(ctx, "list", &list)
				return list, err
			}),
			"Remind": actor.Typed(func(ctx context.Context, t actor.Turn, in struct {
				Name string
				At   time.Time
			}) (int, error) {
				t.SetReminder(in.Name, actor.Reminder{Due: in.At})
				return 0, nil
			}),
		},
		Remind: func(ctx context.Context, t actor.Turn, name string, _ []byte) error {
			var list []string
			if _, err := t.Get(ctx, "list", &list); err != nil {
				return err
			}
			return t.Set("list", append(list, "reminded:"+name))
		},
	}
}

func TestRestartKeepsStateRemindersAndEvents(t *testing.T) {
	dir := t.TempDir()
	h := openHost(t, dir, []actor.Type{ledger()}, Options{})
	ctx := t.Context()
	if _, err := actor.Call[[]string](ctx, h, "Ledger", "a", "Append", "one"); err != nil {
		t.Fatal(err)
	}
	due := time.Now().Add(300 * time.Millisecond)
	if _, err := actor.Call[int](ctx, h, "Ledger", "a", "Remind", map[string]any{"Name": "r", "At": due}); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	// The reminder comes due while no host runs.
	for time.Now().Before(due) {
		time.Sleep(due.Sub(time.Now()))
	}

	h2 := openHost(t, dir, []actor.Type{ledger()}, Options{})
	if got := h2.Stats().Reminders; got != 1 {
		t.Fatalf("reopened host has %d reminders, want 1", got)
	}
	var list []string
	waitFor(t, 5*time.Second, "the overdue reminder", func() bool {
		var err error
		list, err = actor.Call[[]string](ctx, h2, "Ledger", "a", "List", nil)
		return err == nil && len(list) == 2
	})
	if list[0] != "one" || list[1] != "reminded:r" {
		t.Fatalf("list = %q", list)
	}
	waitFor(t, 5*time.Second, "the one-shot reminder to be removed", func() bool { return h2.Stats().Reminders == 0 })
	evs, err := h2.Events().Read(ctx, "ledger", 0, 10)
	if err != nil || len(evs) != 1 || evs[0].Type != "ledger.appended" || evs[0].Source != "Ledger/a" {
		t.Fatalf("events after restart = %+v, %v", evs, err)
	}
}

func TestFailedTurnPublishesNothing(t *testing.T) {
	h := openHost(t, t.TempDir(), []actor.Type{ledger()}, Options{})
	ctx := t.Context()
	if _, err := actor.Call[[]string](ctx, h, "Ledger", "a", "Append", "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := actor.Call[[]string](ctx, h, "Ledger", "a", "Append", "fail"); !errors.Is(err, errs.Conflict) {
		t.Fatalf("Append(fail) = %v, want a conflict", err)
	}
	evs, err := h.Events().Read(ctx, "", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1: the failed turn's event must not be published", len(evs))
	}
	list, _ := actor.Call[[]string](ctx, h, "Ledger", "a", "List", nil)
	if len(list) != 1 {
		t.Fatalf("list = %q after a failed turn", list)
	}
}

func TestEventsInCommitOrderAndWait(t *testing.T) {
	h := openHost(t, t.TempDir(), []actor.Type{ledger()}, Options{})
	ctx := t.Context()
	log := h.Events()

	got := make(chan []string, 1)
	go func() {
		var seen []string
		var after int64
		for len(seen) < 200 {
			if err := log.Wait(ctx, after); err != nil {
				return
			}
			evs, err := log.Read(ctx, "ledger", after, 50)
			if err != nil {
				return
			}
			for _, e := range evs {
				if e.ID <= after {
					return
				}
				after = e.ID
				var d map[string]string
				json.Unmarshal(e.Data, &d)
				seen = append(seen, d["id"]+"/"+d["value"])
			}
		}
		got <- seen
	}()

	var wg sync.WaitGroup
	for a := range 4 {
		id := string(rune('a' + a))
		wg.Go(func() {
			for i := range 50 {
				if _, err := actor.Call[[]string](ctx, h, "Ledger", id, "Append", string(rune('0'+i%10))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	select {
	case seen := <-got:
		// Per actor, events appear in the order the actor published them.
		next := map[string]int{}
		for _, s := range seen {
			id, v := s[:1], s[2:]
			if want := string(rune('0' + next[id]%10)); v != want {
				t.Fatalf("actor %s: event %q out of order, want %q", id, v, want)
			}
			next[id]++
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reader did not see 200 events")
	}
}

func TestIdleActorsAreDeactivated(t *testing.T) {
	h := openHost(t, t.TempDir(), []actor.Type{ledger()}, Options{IdleTimeout: 50 * time.Millisecond})
	ctx := t.Context()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := actor.Call[[]string](ctx, h, "Ledger", id, "Append", "x"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "idle actors to go", func() bool { return h.Stats().Active == 0 })
	list, err := actor.Call[[]string](ctx, h, "Ledger", "b", "List", nil)
	if err != nil || len(list) != 1 {
		t.Fatalf("after deactivation List = %q, %v", list, err)
	}
	if got := h.Stats().Activations; got != 4 {
		t.Fatalf("activations = %d, want 4 (3, then b again)", got)
	}
}

func TestReminderRegisteredAgainDuringCallbackIsKept(t *testing.T) {
	// A callback that registers its own reminder again (a chain) must not lose the
	// new registration to the old one's bookkeeping.
	chain := actor.Type{
		Name: "Chain",
		Methods: map[string]actor.Method{
			"Start": actor.Typed(func(ctx context.Context, t actor.Turn, _ struct{}) (int, error) {
				t.SetReminder("next", actor.Reminder{Due: t.Now().Add(10 * time.Millisecond)})
				return 0, nil
			}),
			"Count": actor.Typed(func(ctx context.Context, t actor.Turn, _ struct{}) (int, error) {
				var n int
				_, err := t.Get(ctx, "n", &n)
				return n, err
			}),
		},
		Remind: func(ctx context.Context, t actor.Turn, name string, _ []byte) error {
			var n int
			if _, err := t.Get(ctx, "n", &n); err != nil {
				return err
			}
			if n < 5 {
				t.SetReminder("next", actor.Reminder{Due: t.Now().Add(10 * time.Millisecond)})
			}
			return t.Set("n", n+1)
		},
	}
	h := openHost(t, t.TempDir(), []actor.Type{chain}, Options{})
	if _, err := actor.Call[int](t.Context(), h, "Chain", "x", "Start", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the chain to run 6 times", func() bool {
		n, _ := actor.Call[int](t.Context(), h, "Chain", "x", "Count", nil)
		return n == 6
	})
	waitFor(t, 5*time.Second, "the last reminder to be removed", func() bool { return h.Stats().Reminders == 0 })
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOldEventsAreTrimmed(t *testing.T) {
	dir := t.TempDir()
	h := openHost(t, dir, []actor.Type{ledger()}, Options{EventRetention: 100 * time.Millisecond})
	ctx := t.Context()
	if _, err := actor.Call[[]string](ctx, h, "Ledger", "a", "Append", "old"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the old event to be trimmed", func() bool {
		evs, err := h.Events().Read(ctx, "", 0, 10)
		return err == nil && len(evs) == 0
	})
	// Ids keep growing after a trim: readers resume where they were.
	if _, err := actor.Call[[]string](ctx, h, "Ledger", "a", "Append", "new"); err != nil {
		t.Fatal(err)
	}
	evs, err := h.Events().Read(ctx, "", 0, 10)
	if err != nil || len(evs) != 1 || evs[0].ID != 2 {
		t.Fatalf("after a trim: %+v, %v; want the new event with id 2", evs, err)
	}
	// Not even a restart after every event was trimmed reuses an id.
	waitFor(t, 5*time.Second, "the second event to be trimmed", func() bool {
		evs, err := h.Events().Read(ctx, "", 0, 10)
		return err == nil && len(evs) == 0
	})
	h.Close()
	h2 := openHost(t, dir, []actor.Type{ledger()}, Options{})
	if _, err := actor.Call[[]string](ctx, h2, "Ledger", "a", "Append", "after restart"); err != nil {
		t.Fatal(err)
	}
	if evs, err := h2.Events().Read(ctx, "", 0, 10); err != nil || len(evs) != 1 || evs[0].ID != 3 {
		t.Fatalf("after a restart: %+v, %v; want one event with id 3", evs, err)
	}
}

// A new database file gets 16 KiB pages and WAL, on the writer and as the
// readers see it.
func TestNewDBFileSettings(t *testing.T) {
	ctx := context.Background()
	writer, reader, err := openDB(ctx, filepath.Join(t.TempDir(), DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	defer reader.Close()
	for name, db := range map[string]*sql.DB{"writer": writer, "reader": reader} {
		var pageSize int
		var mode string
		if err := db.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil || pageSize != 16384 {
			t.Errorf("%s: page_size = %d, %v; want 16384", name, pageSize, err)
		}
		if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("%s: journal_mode = %q, %v; want wal", name, mode, err)
		}
	}
}

// An activation reads all of its actor's state at its first read: a key
// deleted from the store behind the host's back afterwards is still seen, and
// a key that was not stored then stays absent, even once stored behind the
// host's back, since nothing reads the store again.
func TestActivationReadsAllStateOnce(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	keys := actor.Type{
		Name: "Keys",
		Methods: map[string]actor.Method{
			"Set": actor.Typed(func(ctx context.Context, t actor.Turn, kv [2]string) (struct{}, error) {
				return struct{}{}, t.Set(kv[0], kv[1])
			}),
			"Get": actor.Typed(func(ctx context.Context, t actor.Turn, key string) (*string, error) {
				var v string
				if ok, err := t.Get(ctx, key, &v); err != nil || !ok {
					return nil, err
				}
				return &v, nil
			}),
		},
	}
	h := openHost(t, dir, []actor.Type{keys}, Options{})
	for _, kv := range [][2]string{{"a", "1"}, {"b", "2"}} {
		if _, err := actor.Call[struct{}](ctx, h, "Keys", "k", "Set", kv); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Deactivate(ctx, "Keys", "k"); err != nil {
		t.Fatal(err)
	}

	get := func(key string) *string {
		t.Helper()
		v, err := actor.Call[*string](ctx, h, "Keys", "k", "Get", key)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := get("a"); v == nil || *v != "1" {
		t.Fatalf("a = %v, want 1", v)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`DELETE FROM actor_state WHERE actor_id = 'k' AND key = 'b'`,
		`INSERT INTO actor_state (actor_type, actor_id, key, value) VALUES ('Keys', 'k', 'c', '"3"')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if v := get("b"); v == nil || *v != "2" {
		t.Fatalf("b = %v after the first read, want 2 (read with a)", v)
	}
	if v := get("c"); v != nil {
		t.Fatalf("c = %q, want absent", *v)
	}

	// A new activation reads the store again.
	if _, err := h.Deactivate(ctx, "Keys", "k"); err != nil {
		t.Fatal(err)
	}
	if v := get("b"); v != nil {
		t.Fatalf("b = %q in a new activation, want absent (deleted)", *v)
	}
	if v := get("c"); v == nil || *v != "3" {
		t.Fatalf("c = %v in a new activation, want 3 (stored)", v)
	}
	if v := get("a"); v == nil || *v != "1" {
		t.Fatalf("a = %v in a new activation, want 1", v)
	}
}

// Reads served from the log's in-memory tail return what the table would,
// for every topic, cursor and limit, and before and after the tail is cut
// back and trimmed.
func TestEventTailMatchesTable(t *testing.T) {
	pub := actor.Type{
		Name: "Pub",
		Methods: map[string]actor.Method{
			"Publish": actor.Typed(func(ctx context.Context, t actor.Turn, n int) (struct{}, error) {
				for i := range n {
					topic := []string{"a", "b", "b"}[i%3]
					if err := t.Publish(topic, "pub.event", map[string]int{"i": i}); err != nil {
						return struct{}{}, err
					}
				}
				return struct{}{}, nil
			}),
		},
	}
	h := openHost(t, t.TempDir(), []actor.Type{pub}, Options{})
	ctx := t.Context()
	l := h.Events().l
	check := func(when string) {
		t.Helper()
		last := l.last.Load()
		for _, topic := range []string{"", "a", "b", "none"} {
			for _, after := range []int64{0, 1, last - tailSize - 1, last - tailSize, last - 100, last - 1, last, last + 5} {
				for _, limit := range []int{1, 7, 1000} {
					tail, ok := l.fromTail(topic, after, limit)
					if !ok {
						continue
					}
					table, err := l.readTable(ctx, topic, after, limit)
					if err != nil {
						t.Fatal(err)
					}
					if len(tail) != len(table) {
						t.Fatalf("%s: topic %q after %d limit %d: %d events from the tail, %d from the table", when, topic, after, limit, len(tail), len(table))
					}
					for i := range tail {
						a, b := tail[i], table[i]
						if a.ID != b.ID || a.Topic != b.Topic || a.Type != b.Type || !a.Time.Equal(b.Time) ||
							a.Source != b.Source || string(a.Data) != string(b.Data) {
							t.Fatalf("%s: topic %q after %d: event %d is %+v from the tail, %+v from the table", when, topic, after, i, a, b)
						}
					}
				}
			}
		}
	}
	for _, n := range []int{10, 3000, 3000, 3000} {
		if _, err := actor.Call[struct{}](ctx, h, "Pub", "p", "Publish", n); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("after %d events", l.last.Load()))
	}
	if len(l.tail) > 2*tailSize || len(l.tail) < tailSize {
		t.Errorf("tail holds %d events, want %d to %d", len(l.tail), tailSize, 2*tailSize)
	}
	if _, ok := l.fromTail("", 0, 10); ok {
		t.Error("the tail claims the first events, which it has dropped")
	}
	through := l.tail[0].ID + 50
	if _, err := h.trimBatch(ctx, time.Now().Add(time.Hour).UnixNano(), int(through)); err != nil {
		t.Fatal(err)
	}
	if l.tail[0].ID != through+1 {
		t.Fatalf("after trimming through %d the tail starts at %d", through, l.tail[0].ID)
	}
	check("after a trim")
}
