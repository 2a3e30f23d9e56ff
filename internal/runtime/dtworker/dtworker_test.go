package dtworker_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/backend/sqlite"
	"github.com/microsoft/durabletask-go/task"

	"github.com/taskagent/taskagent/internal/runtime/dtlog"
	"github.com/taskagent/taskagent/internal/runtime/dtworker"
	"github.com/taskagent/taskagent/internal/runtime/embedded/wfbackend"
)

func registry(t *testing.T) *task.TaskRegistry {
	t.Helper()
	r := task.NewTaskRegistry()
	if err := r.AddOrchestratorN("Echo", func(ctx *task.OrchestrationContext) (any, error) {
		var out int
		err := ctx.CallActivity("Inc", task.WithActivityInput(1)).Await(&out)
		return out, err
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.AddActivityN("Inc", func(ctx task.ActivityContext) (any, error) {
		var n int
		err := ctx.GetInput(&n)
		return n + 1, err
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

// Workers are started and shut down again and again over both kinds of
// backend: one that blocks in a fetch until work comes (ours) and one whose
// fetch returns at once when there is none (durabletask-go's SQLite backend).
// Every workflow started completes across the restarts, every Shutdown
// succeeds, and the race detector (the test command runs it) sees no Add
// racing with the hub's Wait.
//
// Ours is shut down while the round's workflows run: work in flight is
// abandoned and picked up by the next worker. The SQLite backend keeps a
// cancelled work item locked in its database for two minutes, so each of its
// rounds finishes before the shutdown.
func TestRestarts(t *testing.T) {
	type kind struct {
		open         func(t *testing.T) backend.Backend
		finishRounds bool
	}
	backends := map[string]kind{
		"wfbackend": {open: func(t *testing.T) backend.Backend {
			be, err := wfbackend.Open(filepath.Join(t.TempDir(), "wf.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { be.Close() })
			return be
		}},
		"durabletask-sqlite": {open: func(t *testing.T) backend.Backend {
			be := sqlite.NewSqliteBackend(sqlite.NewSqliteOptions(filepath.Join(t.TempDir(), "dt.db")), dtlog.New(nil))
			if err := be.CreateTaskHub(context.Background()); err != nil {
				t.Fatal(err)
			}
			return be
		}, finishRounds: true},
	}
	for name, k := range backends {
		t.Run(name, func(t *testing.T) {
			be := k.open(t)
			reg := registry(t)
			client := backend.NewTaskHubClient(be)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			const rounds, perRound = 6, 5
			var ids []api.InstanceID
			for round := range rounds {
				w, err := dtworker.Start(ctx, be, task.NewTaskExecutor(reg), dtlog.New(nil), 8)
				if err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				for i := range perRound {
					id := api.InstanceID(fmt.Sprintf("r%d-%d", round, i))
					ids = append(ids, id)
					wg.Go(func() {
						if _, err := client.ScheduleNewOrchestration(ctx, "Echo", api.WithInstanceID(id)); err != nil {
							t.Errorf("schedule %s: %v", id, err)
						}
					})
				}
				wg.Wait()
				if k.finishRounds {
					waitCompleted(ctx, t, client, ids[len(ids)-perRound:])
				}
				if err := w.Shutdown(ctx); err != nil {
					t.Fatalf("round %d: shutdown: %v", round, err)
				}
				if err := be.Start(ctx); err != nil {
					t.Fatal(err)
				}
			}
			// What the rounds left unfinished, a last worker finishes.
			w, err := dtworker.Start(ctx, be, task.NewTaskExecutor(reg), dtlog.New(nil), 8)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := w.Shutdown(ctx); err != nil {
					t.Errorf("final shutdown: %v", err)
				}
			}()
			waitCompleted(ctx, t, client, ids)
		})
	}
}

// waitCompleted waits until every instance in ids has completed with output 2.
func waitCompleted(ctx context.Context, t *testing.T, client backend.TaskHubClient, ids []api.InstanceID) {
	t.Helper()
	for _, id := range ids {
		md, err := client.WaitForOrchestrationCompletion(ctx, id)
		if err != nil {
			t.Fatalf("wait for %s: %v", id, err)
		}
		if md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || md.SerializedOutput != "2" {
			t.Fatalf("%s: %v, output %q; want COMPLETED with 2", id, md.RuntimeStatus, md.SerializedOutput)
		}
	}
}

// Shutdown gives up waiting for the pollers when its context ends, says so,
// and still stops the workers: here the activity poller cannot park, since the
// only slot is taken by an activity that runs until it is cancelled.
func TestShutdownBoundedByContext(t *testing.T) {
	be, err := wfbackend.Open(filepath.Join(t.TempDir(), "wf.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	running := make(chan struct{})
	r := task.NewTaskRegistry()
	if err := r.AddOrchestratorN("Holds", func(ctx *task.OrchestrationContext) (any, error) {
		return nil, ctx.CallActivity("Hold").Await(nil)
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.AddActivityN("Hold", func(ctx task.ActivityContext) (any, error) {
		close(running)
		<-ctx.Context().Done()
		return nil, ctx.Context().Err()
	}); err != nil {
		t.Fatal(err)
	}
	w, err := dtworker.Start(context.Background(), be, task.NewTaskExecutor(r), dtlog.New(nil), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backend.NewTaskHubClient(be).ScheduleNewOrchestration(context.Background(), "Holds"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-running:
	case <-time.After(10 * time.Second):
		t.Fatal("the activity did not start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w.Shutdown(ctx); err == nil {
		t.Error("Shutdown = nil, want an error saying the pollers did not park")
	}
}
