package notify_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/notify"
)

// fakeNotifier is a hand-written fake: err decides each call's result, calls counts
// the calls that reached it.
type fakeNotifier struct {
	calls atomic.Int64
	mu    sync.Mutex
	err   func(n notify.Notification) error
}

func (f *fakeNotifier) Name() string { return "fake" }

func (f *fakeNotifier) Notify(_ context.Context, n notify.Notification) error {
	f.calls.Add(1)
	f.mu.Lock()
	fn := f.err
	f.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(n)
}

// fail makes every later call return err.
func (f *fakeNotifier) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = func(notify.Notification) error { return err }
}

func note(id, assignee string) notify.Notification {
	return notify.Notification{ID: id, TaskID: "task-" + id, Title: "Write report", Assignee: assignee, Attempt: 1}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func wantKind(t *testing.T, err error, want errs.Kind) {
	t.Helper()
	if got := errs.KindOf(err); got != want {
		t.Fatalf("error kind: got %q (%v), want %q", got, err, want)
	}
}

// waitFor polls cond until it holds, failing the test after a deadline. Only for
// states that arrive with the clock (a breaker's open timeout), which no channel
// announces.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var errDown = errs.E(errs.Unavailable, "service down")
