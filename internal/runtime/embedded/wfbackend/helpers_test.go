package wfbackend

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/task"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/taskagent/taskagent/internal/runtime/dtlog"
	"github.com/taskagent/taskagent/internal/runtime/dtworker"
)

// testLogger discards logs unless WFBACKEND_TEST_LOG is set, so that test
// output stays readable; set it to debug a failure.
func testLogger() *slog.Logger {
	if os.Getenv("WFBACKEND_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openAt opens a Backend on path and closes it when the test ends.
func openAt(t *testing.T, path string, opts ...Option) *Backend {
	t.Helper()
	be, err := Open(path, testLogger(), opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := be.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return be
}

// openTest opens a Backend on a fresh file.
func openTest(t *testing.T, opts ...Option) *Backend {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "wf.db"), opts...)
}

// testCtx is a context that ends before the go test timeout would, so that a
// hung wait fails the test with a message instead of a stack dump.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startWorker runs a task hub worker over be with r's orchestrators and
// activities, and stops it when the test ends (before be closes, since
// cleanups run last-in first-out).
func startWorker(t *testing.T, be backend.Backend, r *task.TaskRegistry) (backend.TaskHubClient, func()) {
	t.Helper()
	client, stop, err := runWorker(be, r, 64)
	if err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(stop)
	return client, stop
}

// runWorker wires durabletask-go's executor and workers to be the way the
// embedded runtime does: both workers with parallelism n.
func runWorker(be backend.Backend, r *task.TaskRegistry, n int32) (backend.TaskHubClient, func(), error) {
	w, err := dtworker.Start(context.Background(), be, task.NewTaskExecutor(r), dtlog.New(testLogger()), n)
	if err != nil {
		return nil, nil, err
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = w.Shutdown(context.Background())
		}
	}
	return backend.NewTaskHubClient(be), stop, nil
}

// event decodes a HistoryEvent from protojson. durabletask-go keeps its
// protobuf types in an internal package; JSON lets tests build any event
// without importing it.
func event(t *testing.T, js string) *backend.HistoryEvent {
	t.Helper()
	e := new(backend.HistoryEvent)
	if err := protojson.Unmarshal([]byte(js), e); err != nil {
		t.Fatalf("bad test event %s: %v", js, err)
	}
	if e.Timestamp == nil {
		e.Timestamp = timestamppb.Now()
	}
	return e
}

// orchestratorStarted is the event the orchestration worker adds at the start
// of every turn; it sets the orchestration's current time.
func orchestratorStarted(t *testing.T) *backend.HistoryEvent {
	return event(t, `{"eventId": -1, "orchestratorStarted": {}}`)
}

// waitFor polls cond until it holds or the deadline passes. For conditions the
// backend offers no event for (for example another process's progress).
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitDone waits for an instance to finish, event-driven.
func waitDone(t *testing.T, be *Backend, id api.InstanceID, d time.Duration) *api.OrchestrationMetadata {
	t.Helper()
	md, err := be.WaitForOrchestrationCompletion(testCtx(t, d), id)
	if err != nil {
		t.Fatalf("wait for %s: %v", id, err)
	}
	return md
}
