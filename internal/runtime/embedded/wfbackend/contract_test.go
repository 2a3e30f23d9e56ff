package wfbackend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/task"
)

// These tests port the ideas of durabletask-go v0.5.0's backend contract tests
// (tests/backend_test.go) to this backend. They drive the Backend methods
// directly, doing by hand what the orchestration and activity workers do, with
// WithWorkItemWait(0) so that "no work" is an immediate ErrNoWorkItems as the
// contract tests expect.

const (
	defaultName  = "testing"
	defaultInput = `"Hello, 世界!"`
)

// contractRegistry registers the orchestrators the contract tests run.
func contractRegistry(t *testing.T) *task.TaskRegistry {
	r := task.NewTaskRegistry()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.AddOrchestratorN(defaultName, func(ctx *task.OrchestrationContext) (any, error) {
		return "done!", nil
	}))
	must(r.AddOrchestratorN("Fails", func(ctx *task.OrchestrationContext) (any, error) {
		return nil, errors.New("Kah-BOOOM!!")
	}))
	must(r.AddOrchestratorN("WaitsForever", func(ctx *task.OrchestrationContext) (any, error) {
		return nil, ctx.WaitForSingleEvent("never", -1).Await(nil)
	}))
	must(r.AddOrchestratorN("CallsActivity", func(ctx *task.OrchestrationContext) (any, error) {
		var out string
		err := ctx.CallActivity("MyActivity", task.WithActivityInput("Hello, activity!")).Await(&out)
		return out, err
	}))
	must(r.AddOrchestratorN("Timer", func(ctx *task.OrchestrationContext) (any, error) {
		return nil, ctx.CreateTimer(time.Second).Await(nil)
	}))
	must(r.AddActivityN("MyActivity", func(ctx task.ActivityContext) (any, error) {
		var in string
		if err := ctx.GetInput(&in); err != nil {
			return nil, err
		}
		return "42:" + in, nil
	}))
	return r
}

// createInstance creates an instance the way backend.TaskHubClient does.
func createInstance(t *testing.T, be backend.Backend, name, id string, opts ...backend.OrchestrationIdReusePolicyOptions) error {
	t.Helper()
	e := event(t, fmt.Sprintf(`{"eventId": -1, "executionStarted": {"name": %q,
		"orchestrationInstance": {"instanceId": %q}, "input": %q}}`, name, id, defaultInput))
	return be.CreateOrchestrationInstance(context.Background(), e, opts...)
}

func mustCreate(t *testing.T, be backend.Backend, name, id string) {
	t.Helper()
	if err := createInstance(t, be, name, id); err != nil {
		t.Fatalf("CreateOrchestrationInstance(%s): %v", id, err)
	}
}

func mustGetOrch(t *testing.T, be backend.Backend, wantID string) *backend.OrchestrationWorkItem {
	t.Helper()
	wi, err := be.GetOrchestrationWorkItem(context.Background())
	if err != nil {
		t.Fatalf("GetOrchestrationWorkItem: %v", err)
	}
	if string(wi.InstanceID) != wantID {
		t.Fatalf("work item for %s, want %s", wi.InstanceID, wantID)
	}
	if wi.LockedBy == "" {
		t.Fatal("work item has empty LockedBy")
	}
	return wi
}

func assertNoOrchWork(t *testing.T, be backend.Backend) {
	t.Helper()
	if wi, err := be.GetOrchestrationWorkItem(context.Background()); !errors.Is(err, backend.ErrNoWorkItems) {
		t.Fatalf("GetOrchestrationWorkItem = %v, %v; want ErrNoWorkItems", wi, err)
	}
}

func assertNoActivityWork(t *testing.T, be backend.Backend) {
	t.Helper()
	if wi, err := be.GetActivityWorkItem(context.Background()); !errors.Is(err, backend.ErrNoWorkItems) {
		t.Fatalf("GetActivityWorkItem = %v, %v; want ErrNoWorkItems", wi, err)
	}
}

// runTurn does with a work item what the orchestration worker does: load the
// state, add the new events, run the orchestrator, apply its actions, commit.
func runTurn(t *testing.T, be backend.Backend, ex backend.Executor, wi *backend.OrchestrationWorkItem) *backend.OrchestrationRuntimeState {
	t.Helper()
	ctx := context.Background()
	state := wi.State
	if state == nil {
		var err error
		if state, err = be.GetOrchestrationRuntimeState(ctx, wi); err != nil {
			t.Fatalf("GetOrchestrationRuntimeState: %v", err)
		}
	}
	if err := state.AddEvent(orchestratorStarted(t)); err != nil {
		t.Fatal(err)
	}
	for _, e := range wi.NewEvents {
		if err := state.AddEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	res, err := ex.ExecuteOrchestrator(ctx, wi.InstanceID, state.OldEvents(), state.NewEvents())
	if err != nil {
		t.Fatalf("ExecuteOrchestrator: %v", err)
	}
	if _, err := state.ApplyActions(res.Response.Actions, nil); err != nil {
		t.Fatalf("ApplyActions: %v", err)
	}
	wi.State = state
	if err := be.CompleteOrchestrationWorkItem(ctx, wi); err != nil {
		t.Fatalf("CompleteOrchestrationWorkItem: %v", err)
	}
	return state
}

func TestNewOrchestrationWorkItemSingle(t *testing.T) {
	be := openTest(t, WithWorkItemWait(0))
	mustCreate(t, be, defaultName, "myinstance")

	wi := mustGetOrch(t, be, "myinstance")
	if got := len(wi.NewEvents); got != 1 {
		t.Fatalf("got %d new events, want 1", got)
	}
	es := wi.NewEvents[0].GetExecutionStarted()
	if es == nil {
		t.Fatalf("new event is %v, want ExecutionStarted", wi.NewEvents[0])
	}
	if es.GetOrchestrationInstance().GetInstanceId() != "myinstance" || es.GetName() != defaultName ||
		es.GetInput().GetValue() != defaultInput {
		t.Errorf("ExecutionStarted = %v", es)
	}
	state, err := be.GetOrchestrationRuntimeState(context.Background(), wi)
	if err != nil {
		t.Fatal(err)
	}
	if state.InstanceID() != wi.InstanceID {
		t.Errorf("state instance %s, want %s", state.InstanceID(), wi.InstanceID)
	}
	if _, err := state.Name(); !errors.Is(err, api.ErrNotStarted) {
		t.Errorf("state.Name() error = %v, want ErrNotStarted", err)
	}
	if n := len(state.OldEvents()) + len(state.NewEvents()); n != 0 {
		t.Errorf("new instance state has %d events, want 0", n)
	}
	if wi.State == nil || len(wi.State.OldEvents()) != 0 {
		t.Errorf("work item state = %v, want empty (known history of a new instance)", wi.State)
	}
	assertNoOrchWork(t, be)
}

func TestNewOrchestrationWorkItemsInOrder(t *testing.T) {
	be := openTest(t, WithWorkItemWait(0))
	const n = 4
	for i := range n {
		mustCreate(t, be, defaultName, fmt.Sprintf("instance_%d", i))
	}
	for i := range n {
		wi := mustGetOrch(t, be, fmt.Sprintf("instance_%d", i))
		if len(wi.NewEvents) != 1 || wi.NewEvents[0].GetExecutionStarted() == nil {
			t.Errorf("work item %d events = %v", i, wi.NewEvents)
		}
	}
	assertNoOrchWork(t, be)
}

func TestCompleteOrchestration(t *testing.T) {
	ex := task.NewTaskExecutor(contractRegistry(t))
	tests := []struct {
		name       string
		orch       string
		terminate  bool
		wantStatus api.OrchestrationStatus
		check      func(t *testing.T, md *api.OrchestrationMetadata)
	}{
		{"completed", defaultName, false, api.RUNTIME_STATUS_COMPLETED, func(t *testing.T, md *api.OrchestrationMetadata) {
			if md.SerializedOutput != `"done!"` {
				t.Errorf("output = %s, want \"done!\"", md.SerializedOutput)
			}
		}},
		{"failed", "Fails", false, api.RUNTIME_STATUS_FAILED, func(t *testing.T, md *api.OrchestrationMetadata) {
			if md.FailureDetails == nil || md.FailureDetails.GetErrorMessage() != "Kah-BOOOM!!" {
				t.Errorf("failure details = %v, want message Kah-BOOOM!!", md.FailureDetails)
			}
		}},
		{"terminated", "WaitsForever", true, api.RUNTIME_STATUS_TERMINATED, func(t *testing.T, md *api.OrchestrationMetadata) {
			if md.SerializedOutput != `"bye"` {
				t.Errorf("output = %s, want \"bye\"", md.SerializedOutput)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			be := openTest(t, WithWorkItemWait(0))
			start := time.Now().UTC()
			mustCreate(t, be, tt.orch, "myinstance")
			if tt.terminate {
				if err := be.AddNewOrchestrationEvent(ctx, "myinstance",
					event(t, `{"eventId": -1, "executionTerminated": {"input": "\"bye\""}}`)); err != nil {
					t.Fatal(err)
				}
			}
			runTurn(t, be, ex, mustGetOrch(t, be, "myinstance"))
			assertNoOrchWork(t, be)

			// Read back from the database, not the cache.
			state, err := be.GetOrchestrationRuntimeState(ctx, &backend.OrchestrationWorkItem{InstanceID: "myinstance"})
			if err != nil {
				t.Fatal(err)
			}
			if len(state.NewEvents()) != 0 || len(state.OldEvents()) == 0 {
				t.Errorf("stored state has %d new, %d old events; want 0 new, some old",
					len(state.NewEvents()), len(state.OldEvents()))
			}
			created, err := state.CreatedTime()
			if err != nil {
				t.Fatal(err)
			}
			if created.Before(start) {
				t.Errorf("created %v, before the test started %v", created, start)
			}
			md, err := be.GetOrchestrationMetadata(ctx, "myinstance")
			if err != nil {
				t.Fatal(err)
			}
			if md.Name != tt.orch || md.SerializedInput != defaultInput || !md.CreatedAt.Equal(created) ||
				md.RuntimeStatus != tt.wantStatus || md.RuntimeStatus != state.RuntimeStatus() {
				t.Errorf("metadata = %+v; want name %s, input %s, created %v, status %v",
					md, tt.orch, defaultInput, created, tt.wantStatus)
			}
			if !md.IsComplete() || md.LastUpdatedAt.Before(md.CreatedAt) {
				t.Errorf("metadata = %+v, want complete and updated after creation", md)
			}
			tt.check(t, md)
		})
	}
}

func TestScheduleActivityTasks(t *testing.T) {
	ctx := context.Background()
	ex := task.NewTaskExecutor(contractRegistry(t))
	be := openTest(t, WithWorkItemWait(0))
	assertNoActivityWork(t, be)

	mustCreate(t, be, "CallsActivity", "act")
	runTurn(t, be, ex, mustGetOrch(t, be, "act"))
	md, err := be.GetOrchestrationMetadata(ctx, "act")
	if err != nil || md.RuntimeStatus != api.RUNTIME_STATUS_RUNNING {
		t.Fatalf("metadata = %+v, %v; want RUNNING", md, err)
	}
	assertNoOrchWork(t, be)

	awi, err := be.GetActivityWorkItem(ctx)
	if err != nil {
		t.Fatalf("GetActivityWorkItem: %v", err)
	}
	ts := awi.NewEvent.GetTaskScheduled()
	if ts.GetName() != "MyActivity" || ts.GetInput().GetValue() != `"Hello, activity!"` || awi.InstanceID != "act" {
		t.Fatalf("activity work item = %v", awi)
	}
	assertNoActivityWork(t, be)

	if awi.Result, err = ex.ExecuteActivity(ctx, awi.InstanceID, awi.NewEvent); err != nil {
		t.Fatal(err)
	}
	if err := be.CompleteActivityWorkItem(ctx, awi); err != nil {
		t.Fatalf("CompleteActivityWorkItem: %v", err)
	}
	if err := be.CompleteActivityWorkItem(ctx, awi); !errors.Is(err, backend.ErrWorkItemLockLost) {
		t.Errorf("second CompleteActivityWorkItem = %v, want ErrWorkItemLockLost", err)
	}
	wi := mustGetOrch(t, be, "act")
	if len(wi.NewEvents) != 1 || wi.NewEvents[0].GetTaskCompleted().GetTaskScheduledId() != awi.NewEvent.EventId ||
		wi.NewEvents[0].GetTaskCompleted().GetResult().GetValue() != `"42:Hello, activity!"` {
		t.Fatalf("events after activity = %v", wi.NewEvents)
	}
	runTurn(t, be, ex, wi)
	md, err = be.GetOrchestrationMetadata(ctx, "act")
	if err != nil || md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || md.SerializedOutput != `"42:Hello, activity!"` {
		t.Fatalf("metadata = %+v, %v; want COMPLETED with the activity's output", md, err)
	}
}

func TestScheduleTimerTasks(t *testing.T) {
	ctx := context.Background()
	ex := task.NewTaskExecutor(contractRegistry(t))
	// Blocking fetches: the timer must wake the waiting fetch by itself.
	be := openTest(t)
	mustCreate(t, be, "Timer", "timer")
	wi := mustGetOrch(t, be, "timer")
	state := runTurn(t, be, ex, wi)
	fireAt := state.PendingTimers()[0].GetTimerFired().GetFireAt().AsTime()

	early, cancel := context.WithTimeout(ctx, time.Until(fireAt)-100*time.Millisecond)
	defer cancel()
	if wi, err := be.GetOrchestrationWorkItem(early); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("before the timer is due: GetOrchestrationWorkItem = %v, %v; want to block", wi, err)
	}
	wi, err := be.GetOrchestrationWorkItem(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if now := time.Now(); now.Before(fireAt) {
		t.Errorf("timer delivered at %v, before it is due at %v", now, fireAt)
	} else if late := time.Since(fireAt); late > 200*time.Millisecond {
		t.Errorf("timer delivered %v late", late)
	}
	if len(wi.NewEvents) != 1 || !wi.NewEvents[0].GetTimerFired().GetFireAt().AsTime().Equal(fireAt) {
		t.Fatalf("events = %v, want one TimerFired at %v", wi.NewEvents, fireAt)
	}
}

func TestAbandonOrchestrationWorkItem(t *testing.T) {
	ctx := context.Background()
	be := openTest(t, WithWorkItemWait(0))
	mustCreate(t, be, defaultName, "abc")
	wi := mustGetOrch(t, be, "abc")
	if err := be.AbandonOrchestrationWorkItem(ctx, wi); err != nil {
		t.Fatalf("AbandonOrchestrationWorkItem: %v", err)
	}
	// Available again at once, with the same events.
	wi2 := mustGetOrch(t, be, "abc")
	if len(wi2.NewEvents) != 1 || wi2.NewEvents[0] != wi.NewEvents[0] || wi2.RetryCount != 1 {
		t.Errorf("re-fetched work item = %+v, want the same event and RetryCount 1", wi2)
	}
	// The first holder's lock is gone.
	wi.State = backend.NewOrchestrationRuntimeState(wi.InstanceID, nil)
	if err := be.CompleteOrchestrationWorkItem(ctx, wi); !errors.Is(err, backend.ErrWorkItemLockLost) {
		t.Errorf("Complete with an abandoned lock = %v, want ErrWorkItemLockLost", err)
	}
	if err := be.AbandonOrchestrationWorkItem(ctx, wi); !errors.Is(err, backend.ErrWorkItemLockLost) {
		t.Errorf("Abandon with an abandoned lock = %v, want ErrWorkItemLockLost", err)
	}
}

func TestAbandonActivityWorkItem(t *testing.T) {
	ctx := context.Background()
	ex := task.NewTaskExecutor(contractRegistry(t))
	be := openTest(t, WithWorkItemWait(0))
	mustCreate(t, be, "CallsActivity", "act")
	runTurn(t, be, ex, mustGetOrch(t, be, "act"))

	awi, err := be.GetActivityWorkItem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertNoActivityWork(t, be)
	if err := be.AbandonActivityWorkItem(ctx, awi); err != nil {
		t.Fatalf("AbandonActivityWorkItem: %v", err)
	}
	awi2, err := be.GetActivityWorkItem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if awi2.NewEvent.GetTaskScheduled().GetName() != "MyActivity" || awi2.NewEvent.EventId != awi.NewEvent.EventId {
		t.Errorf("re-fetched activity = %v", awi2)
	}
	awi.Result = event(t, `{"eventId": -1, "taskCompleted": {"taskScheduledId": 0}}`)
	if err := be.CompleteActivityWorkItem(ctx, awi); !errors.Is(err, backend.ErrWorkItemLockLost) {
		t.Errorf("Complete with an abandoned lock = %v, want ErrWorkItemLockLost", err)
	}
}

func TestDeletedTaskHub(t *testing.T) {
	ctx := context.Background()
	be := openTest(t, WithWorkItemWait(0))
	if err := be.CreateTaskHub(ctx); !errors.Is(err, backend.ErrTaskHubExists) {
		t.Errorf("CreateTaskHub on an open store = %v, want ErrTaskHubExists", err)
	}
	mustCreate(t, be, defaultName, "gone")
	if err := be.DeleteTaskHub(ctx); err != nil {
		t.Fatalf("DeleteTaskHub: %v", err)
	}
	if err := be.DeleteTaskHub(ctx); !errors.Is(err, backend.ErrTaskHubNotFound) {
		t.Errorf("second DeleteTaskHub = %v, want ErrTaskHubNotFound", err)
	}
	checks := map[string]error{}
	checks["CreateOrchestrationInstance"] = be.CreateOrchestrationInstance(ctx, nil)
	checks["AddNewOrchestrationEvent"] = be.AddNewOrchestrationEvent(ctx, "x", nil)
	_, checks["GetOrchestrationMetadata"] = be.GetOrchestrationMetadata(ctx, "gone")
	_, checks["GetOrchestrationRuntimeState"] = be.GetOrchestrationRuntimeState(ctx, nil)
	_, checks["GetOrchestrationWorkItem"] = be.GetOrchestrationWorkItem(ctx)
	_, checks["GetActivityWorkItem"] = be.GetActivityWorkItem(ctx)
	checks["CompleteOrchestrationWorkItem"] = be.CompleteOrchestrationWorkItem(ctx, nil)
	checks["AbandonOrchestrationWorkItem"] = be.AbandonOrchestrationWorkItem(ctx, nil)
	checks["PurgeOrchestrationState"] = be.PurgeOrchestrationState(ctx, "gone")
	for name, err := range checks {
		if !errors.Is(err, backend.ErrNotInitialized) {
			t.Errorf("%s after DeleteTaskHub = %v, want ErrNotInitialized", name, err)
		}
	}
	if err := be.CreateTaskHub(ctx); err != nil {
		t.Fatalf("CreateTaskHub after delete: %v", err)
	}
	if _, err := be.GetOrchestrationMetadata(ctx, "gone"); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Errorf("metadata of an instance of the deleted hub: %v, want ErrInstanceNotFound", err)
	}
	assertNoOrchWork(t, be)
}

func TestGetNonExistingMetadata(t *testing.T) {
	be := openTest(t, WithWorkItemWait(0))
	if _, err := be.GetOrchestrationMetadata(context.Background(), "bogus"); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Errorf("GetOrchestrationMetadata(bogus) = %v, want ErrInstanceNotFound", err)
	}
}

func TestAddEventToMissingInstance(t *testing.T) {
	be := openTest(t, WithWorkItemWait(0))
	err := be.AddNewOrchestrationEvent(context.Background(), "bogus",
		event(t, `{"eventId": -1, "eventRaised": {"name": "x"}}`))
	if !errors.Is(err, api.ErrInstanceNotFound) {
		t.Errorf("AddNewOrchestrationEvent(bogus) = %v, want ErrInstanceNotFound", err)
	}
}

func TestPurgeOrchestrationState(t *testing.T) {
	ctx := context.Background()
	ex := task.NewTaskExecutor(contractRegistry(t))
	be := openTest(t, WithWorkItemWait(0))

	mustCreate(t, be, "WaitsForever", "running")
	runTurn(t, be, ex, mustGetOrch(t, be, "running"))
	if err := be.PurgeOrchestrationState(ctx, "running"); !errors.Is(err, api.ErrNotCompleted) {
		t.Errorf("purge of a running instance = %v, want ErrNotCompleted", err)
	}

	mustCreate(t, be, defaultName, "done")
	runTurn(t, be, ex, mustGetOrch(t, be, "done"))
	if err := be.PurgeOrchestrationState(ctx, "done"); err != nil {
		t.Fatalf("PurgeOrchestrationState: %v", err)
	}
	if _, err := be.GetOrchestrationMetadata(ctx, "done"); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Errorf("metadata after purge: %v, want ErrInstanceNotFound", err)
	}
	state, err := be.GetOrchestrationRuntimeState(ctx, &backend.OrchestrationWorkItem{InstanceID: "done"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(state.OldEvents()) + len(state.NewEvents()); n != 0 {
		t.Errorf("state after purge has %d events, want 0", n)
	}
	if err := be.PurgeOrchestrationState(ctx, "done"); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Errorf("second purge = %v, want ErrInstanceNotFound", err)
	}
	// The ID is free again.
	mustCreate(t, be, defaultName, "done")
}

func TestCreateWithExistingID(t *testing.T) {
	ctx := context.Background()
	ex := task.NewTaskExecutor(contractRegistry(t))
	all := []api.OrchestrationStatus{api.RUNTIME_STATUS_PENDING, api.RUNTIME_STATUS_RUNNING, api.RUNTIME_STATUS_COMPLETED}
	policy := func(action api.CreateOrchestrationAction, statuses ...api.OrchestrationStatus) backend.OrchestrationIdReusePolicyOptions {
		return backend.WithOrchestrationIdReusePolicy(&api.OrchestrationIdReusePolicy{Action: action, OperationStatus: statuses})
	}

	t.Run("no policy", func(t *testing.T) {
		be := openTest(t, WithWorkItemWait(0))
		mustCreate(t, be, defaultName, "dup")
		if err := createInstance(t, be, defaultName, "dup"); !errors.Is(err, api.ErrDuplicateInstance) {
			t.Errorf("second create = %v, want ErrDuplicateInstance", err)
		}
	})
	t.Run("status not in policy", func(t *testing.T) {
		be := openTest(t, WithWorkItemWait(0))
		mustCreate(t, be, defaultName, "dup")
		err := createInstance(t, be, defaultName, "dup", policy(api.REUSE_ID_ACTION_TERMINATE, api.RUNTIME_STATUS_COMPLETED))
		if !errors.Is(err, api.ErrDuplicateInstance) {
			t.Errorf("create over a PENDING instance with a COMPLETED-only policy = %v, want ErrDuplicateInstance", err)
		}
	})
	t.Run("ignore", func(t *testing.T) {
		be := openTest(t, WithWorkItemWait(0))
		mustCreate(t, be, "WaitsForever", "dup")
		runTurn(t, be, ex, mustGetOrch(t, be, "dup"))
		if err := createInstance(t, be, defaultName, "dup", policy(api.REUSE_ID_ACTION_IGNORE, all...)); err != nil {
			t.Fatalf("create with IGNORE = %v, want nil", err)
		}
		md, err := be.GetOrchestrationMetadata(ctx, "dup")
		if err != nil || md.Name != "WaitsForever" || md.RuntimeStatus != api.RUNTIME_STATUS_RUNNING {
			t.Errorf("metadata = %+v, %v; want the original, running", md, err)
		}
		assertNoOrchWork(t, be)
	})
	t.Run("terminate", func(t *testing.T) {
		be := openTest(t, WithWorkItemWait(0))
		mustCreate(t, be, "CallsActivity", "dup")
		old := mustGetOrch(t, be, "dup")
		runTurn(t, be, ex, old)
		awi, err := be.GetActivityWorkItem(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := createInstance(t, be, defaultName, "dup", policy(api.REUSE_ID_ACTION_TERMINATE, all...)); err != nil {
			t.Fatalf("create with TERMINATE: %v", err)
		}
		// The old instance's activity result is dropped, not delivered to
		// the new instance.
		if awi.Result, err = ex.ExecuteActivity(ctx, awi.InstanceID, awi.NewEvent); err != nil {
			t.Fatal(err)
		}
		if err := be.CompleteActivityWorkItem(ctx, awi); err != nil {
			t.Fatalf("CompleteActivityWorkItem of the replaced instance: %v", err)
		}
		wi := mustGetOrch(t, be, "dup")
		if len(wi.NewEvents) != 1 || wi.NewEvents[0].GetExecutionStarted().GetName() != defaultName {
			t.Fatalf("new instance's events = %v, want its ExecutionStarted only", wi.NewEvents)
		}
		if wi.State == nil || len(wi.State.OldEvents()) != 0 {
			t.Fatalf("new instance's history = %v, want empty", wi.State)
		}
		runTurn(t, be, ex, wi)
		md, err := be.GetOrchestrationMetadata(ctx, "dup")
		if err != nil || md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || md.SerializedOutput != `"done!"` {
			t.Errorf("metadata = %+v, %v; want the new instance, completed", md, err)
		}
	})
}

func TestGetWorkItemBlocksUntilEnqueued(t *testing.T) {
	be := openTest(t)
	ctx := testCtx(t, 10*time.Second)

	got := make(chan *backend.OrchestrationWorkItem, 1)
	go func() {
		wi, err := be.GetOrchestrationWorkItem(ctx)
		if err != nil {
			t.Errorf("GetOrchestrationWorkItem: %v", err)
		}
		got <- wi
	}()
	// Wait until the fetch is blocked, so that the enqueue must wake it.
	waitFor(t, 5*time.Second, "the fetch to block", func() bool {
		be.mu.Lock()
		defer be.mu.Unlock()
		return be.orchSignal.ch != nil
	})
	mustCreate(t, be, defaultName, "wake")
	if wi := <-got; wi == nil || wi.InstanceID != "wake" {
		t.Fatalf("woken fetch got %v, want instance wake", wi)
	}

	// ctx ends the wait with ctx's error.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := be.GetActivityWorkItem(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetActivityWorkItem with an expiring ctx = %v, want DeadlineExceeded", err)
	}

	// After Stop, nothing is handed out: a fetch waits for its ctx even
	// though work is queued, and Start releases it.
	if err := be.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, be, defaultName, "after-stop")
	short2, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if wi, err := be.GetOrchestrationWorkItem(short2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("fetch after Stop = %v, %v; want to wait until ctx ends", wi, err)
	}
	restarted := make(chan *backend.OrchestrationWorkItem, 1)
	go func() {
		wi, err := be.GetOrchestrationWorkItem(ctx)
		if err != nil {
			t.Errorf("fetch after Start: %v", err)
		}
		restarted <- wi
	}()
	if err := be.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if wi := <-restarted; wi == nil || wi.InstanceID != "after-stop" {
		t.Errorf("fetch after Start got %v, want instance after-stop", wi)
	}
}

func TestWorkItemWaitBound(t *testing.T) {
	be := openTest(t, WithWorkItemWait(30*time.Millisecond))
	start := time.Now()
	if _, err := be.GetOrchestrationWorkItem(testCtx(t, 5*time.Second)); !errors.Is(err, backend.ErrNoWorkItems) {
		t.Errorf("GetOrchestrationWorkItem = %v, want ErrNoWorkItems after the bound", err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("returned after %v, before the 30ms bound", d)
	}
}

// blockCommitter occupies the committer until the returned func is called, so
// that a test can queue ops and have them committed as one batch.
func blockCommitter(t *testing.T, be *Backend) (release func()) {
	t.Helper()
	entered := make(chan struct{})
	gate := make(chan struct{})
	go func() {
		_ = be.submit(context.Background(), &op{run: func(*txn, *effects) error {
			close(entered)
			<-gate
			return nil
		}})
	}()
	<-entered
	return func() { close(gate) }
}

func TestGroupCommit(t *testing.T) {
	be := openTest(t, WithWorkItemWait(0))
	release := blockCommitter(t, be)
	before := be.Stats()

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- createInstance(t, be, defaultName, fmt.Sprintf("gc-%d", i))
		})
	}
	waitFor(t, 5*time.Second, "all creates to queue", func() bool { return len(be.ops) == n })
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	after := be.Stats()
	// The blocking op's batch, then one batch for all n creates.
	if tx, ch := after.Transactions-before.Transactions, after.Changes-before.Changes; tx != 2 || ch != n+1 {
		t.Errorf("committed %d changes in %d transactions, want %d in 2", ch, tx, n+1)
	}
	for i := range n {
		if _, err := be.GetOrchestrationMetadata(context.Background(), api.InstanceID(fmt.Sprintf("gc-%d", i))); err != nil {
			t.Errorf("instance gc-%d after group commit: %v", i, err)
		}
	}
}

func TestGroupCommitFallback(t *testing.T) {
	ctx := context.Background()
	be := openTest(t, WithWorkItemWait(0))
	release := blockCommitter(t, be)

	results := make(chan error, 3)
	go func() { results <- createInstance(t, be, defaultName, "good-1") }()
	waitFor(t, 5*time.Second, "queue", func() bool { return len(be.ops) == 1 })
	go func() {
		// A change whose write fails: it writes, then errors, spoiling the
		// shared transaction.
		results <- be.submit(ctx, &op{run: func(tx *txn, eff *effects) error {
			if _, err := be.w.insertInbox.Exec("bad", tx.allocID(), 0, []byte{1}); err != nil {
				return err
			}
			return errors.New("injected failure")
		}})
	}()
	waitFor(t, 5*time.Second, "queue", func() bool { return len(be.ops) == 2 })
	go func() { results <- createInstance(t, be, defaultName, "good-2") }()
	waitFor(t, 5*time.Second, "queue", func() bool { return len(be.ops) == 3 })
	release()

	var failed int
	for range 3 {
		if err := <-results; err != nil {
			if !strings.Contains(err.Error(), "injected failure") {
				t.Errorf("unexpected error: %v", err)
			}
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d changes failed, want 1", failed)
	}
	for _, id := range []api.InstanceID{"good-1", "good-2"} {
		if _, err := be.GetOrchestrationMetadata(ctx, id); err != nil {
			t.Errorf("%s: %v, want created despite the failed neighbour", id, err)
		}
	}
	// Both good instances are dispatchable; the failed change left nothing.
	mustGetOrch(t, be, "good-1")
	mustGetOrch(t, be, "good-2")
	assertNoOrchWork(t, be)
}

func TestHistory(t *testing.T) {
	ctx := context.Background()
	ex := task.NewTaskExecutor(contractRegistry(t))
	be := openTest(t, WithWorkItemWait(0))
	if _, err := be.History(ctx, "nope"); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Errorf("History(nope) = %v, want ErrInstanceNotFound", err)
	}
	mustCreate(t, be, defaultName, "h")
	if h, err := be.History(ctx, "h"); err != nil || len(h) != 0 {
		t.Errorf("History of a pending instance = %v, %v; want empty", h, err)
	}
	state := runTurn(t, be, ex, mustGetOrch(t, be, "h"))
	h, err := be.History(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != len(state.NewEvents()) || h[1].GetExecutionStarted() == nil || h[len(h)-1].GetExecutionCompleted() == nil {
		t.Errorf("History = %v, want the turn's %d events", h, len(state.NewEvents()))
	}
}

func TestOpenPathWithSpecialCharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b#c?d%20e")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "wf.db")
	be := openAt(t, path)
	mustCreate(t, be, defaultName, "x")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %s: %v", path, err)
	}
}
