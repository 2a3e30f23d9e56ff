package wfbackend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/task"
)

// These tests run real task orchestrators through durabletask-go's
// TaskHubWorker and client over this backend, porting the ideas of
// durabletask-go's tests/orchestrations_test.go.

func newRegistry(t *testing.T, add func(r *task.TaskRegistry) error) *task.TaskRegistry {
	t.Helper()
	r := task.NewTaskRegistry()
	if err := add(r); err != nil {
		t.Fatal(err)
	}
	return r
}

// fiveActivityChain is the benchmark workflow: five sequential activities.
func fiveActivityChain(ctx *task.OrchestrationContext) (any, error) {
	var n int
	if err := ctx.GetInput(&n); err != nil {
		return nil, err
	}
	for range 5 {
		if err := ctx.CallActivity("Inc", task.WithActivityInput(n)).Await(&n); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func inc(ctx task.ActivityContext) (any, error) {
	var n int
	if err := ctx.GetInput(&n); err != nil {
		return nil, err
	}
	return n + 1, nil
}

func registerChain(r *task.TaskRegistry) error {
	return errors.Join(r.AddOrchestratorN("Chain", fiveActivityChain), r.AddActivityN("Inc", inc))
}

func TestActivityChain(t *testing.T) {
	be := openTest(t)
	client, _ := startWorker(t, be, newRegistry(t, registerChain))
	ctx := testCtx(t, 10*time.Second)

	id, err := client.ScheduleNewOrchestration(ctx, "Chain", api.WithInput(10))
	if err != nil {
		t.Fatal(err)
	}
	md := waitDone(t, be, id, 10*time.Second)
	if md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || md.SerializedOutput != "15" {
		t.Fatalf("got %v with output %s, want COMPLETED with 15", md.RuntimeStatus, md.SerializedOutput)
	}
	// The client's polling wait agrees with the event-driven one.
	md2, err := client.WaitForOrchestrationCompletion(ctx, id)
	if err != nil || md2.SerializedOutput != "15" {
		t.Fatalf("client wait = %+v, %v", md2, err)
	}
}

// lockChecker wraps a backend and fails the test if an instance is handed
// out while a previous work item for it is still being processed.
type lockChecker struct {
	backend.Backend
	t    *testing.T
	mu   sync.Mutex
	held map[api.InstanceID]bool
	max  int // most instances held at once
}

func newLockChecker(t *testing.T, be backend.Backend) *lockChecker {
	return &lockChecker{Backend: be, t: t, held: make(map[api.InstanceID]bool)}
}

func (c *lockChecker) GetOrchestrationWorkItem(ctx context.Context) (*backend.OrchestrationWorkItem, error) {
	wi, err := c.Backend.GetOrchestrationWorkItem(ctx)
	if err == nil {
		c.mu.Lock()
		if c.held[wi.InstanceID] {
			c.t.Errorf("instance %s handed out while already locked", wi.InstanceID)
		}
		c.held[wi.InstanceID] = true
		c.max = max(c.max, len(c.held))
		c.mu.Unlock()
	}
	return wi, err
}

// release forgets the lock before the backend releases it, so that a
// legitimate re-dispatch right after the release is never reported.
func (c *lockChecker) release(id api.InstanceID) {
	c.mu.Lock()
	delete(c.held, id)
	c.mu.Unlock()
}

func (c *lockChecker) CompleteOrchestrationWorkItem(ctx context.Context, wi *backend.OrchestrationWorkItem) error {
	c.release(wi.InstanceID)
	return c.Backend.CompleteOrchestrationWorkItem(ctx, wi)
}

func (c *lockChecker) AbandonOrchestrationWorkItem(ctx context.Context, wi *backend.OrchestrationWorkItem) error {
	c.release(wi.InstanceID)
	return c.Backend.AbandonOrchestrationWorkItem(ctx, wi)
}

func TestManyConcurrentWorkflows(t *testing.T) {
	// The history cache on, off, and too small to hold the running
	// instances (constant eviction): turns read history from the database
	// in the last two.
	for _, cache := range []int{10_000, 0, 3} {
		t.Run(fmt.Sprintf("cache=%d", cache), func(t *testing.T) {
			be := openTest(t, WithHistoryCacheSize(cache))
			checker := newLockChecker(t, be)
			client, stop := startWorker(t, checker, newRegistry(t, func(r *task.TaskRegistry) error {
				return errors.Join(registerChain(r),
					// Ten activities at once: their results reach the
					// instance while it is locked, and must wait.
					r.AddOrchestratorN("FanIn", fanOut("Inc")))
			}))
			ctx := testCtx(t, 30*time.Second)

			const n = 60
			ids := make([]api.InstanceID, 0, 2*n)
			for i := range n {
				id, err := client.ScheduleNewOrchestration(ctx, "Chain", api.WithInput(i))
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
				if id, err = client.ScheduleNewOrchestration(ctx, "FanIn"); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			for i, id := range ids {
				want := "55"
				if i%2 == 0 {
					want = fmt.Sprint(i/2 + 5)
				}
				md := waitDone(t, be, id, 30*time.Second)
				if md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || md.SerializedOutput != want {
					t.Fatalf("%s: %v with output %s, want COMPLETED with %s", id, md.RuntimeStatus, md.SerializedOutput, want)
				}
			}
			stop()
			if checker.max < 2 {
				t.Errorf("at most %d instance(s) processed at once, want several in parallel", checker.max)
			}
			if s := be.Stats(); s.Transactions >= s.Changes {
				t.Errorf("stats %+v: no change shared a transaction under concurrency", s)
			}
		})
	}
}

func TestSubOrchestration(t *testing.T) {
	be := openTest(t)
	client, _ := startWorker(t, be, newRegistry(t, func(r *task.TaskRegistry) error {
		return errors.Join(registerChain(r),
			r.AddOrchestratorN("Parent", func(ctx *task.OrchestrationContext) (any, error) {
				var a, b int
				if err := ctx.CallSubOrchestrator("Chain", task.WithSubOrchestratorInput(1)).Await(&a); err != nil {
					return nil, err
				}
				err := ctx.CallSubOrchestrator("Fails").Await(&b)
				return fmt.Sprintf("%d; %v", a, err != nil), nil
			}),
			r.AddOrchestratorN("Fails", func(ctx *task.OrchestrationContext) (any, error) {
				return nil, errors.New("child failed")
			}),
		)
	}))
	ctx := testCtx(t, 10*time.Second)
	id, err := client.ScheduleNewOrchestration(ctx, "Parent")
	if err != nil {
		t.Fatal(err)
	}
	md := waitDone(t, be, id, 10*time.Second)
	if md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || md.SerializedOutput != `"6; true"` {
		t.Fatalf("got %v output %s, want COMPLETED with \"6; true\"", md.RuntimeStatus, md.SerializedOutput)
	}
}

// fanOut calls activity on 0 to 9 at once and returns the sum of the results.
func fanOut(activity string) task.Orchestrator {
	return func(ctx *task.OrchestrationContext) (any, error) {
		var tasks []task.Task
		for i := range 10 {
			tasks = append(tasks, ctx.CallActivity(activity, task.WithActivityInput(i)))
		}
		sum := 0
		for _, tk := range tasks {
			var v int
			if err := tk.Await(&v); err != nil {
				return nil, err
			}
			sum += v
		}
		return sum, nil
	}
}

func TestActivityFanOut(t *testing.T) {
	var running, maxRunning atomic.Int32
	release := make(chan struct{})
	be := openTest(t)
	client, _ := startWorker(t, be, newRegistry(t, func(r *task.TaskRegistry) error {
		return errors.Join(
			r.AddOrchestratorN("FanOut", fanOut("Square")),
			r.AddActivityN("Square", func(ctx task.ActivityContext) (any, error) {
				var n int
				if err := ctx.GetInput(&n); err != nil {
					return nil, err
				}
				now := running.Add(1)
				for m := maxRunning.Load(); now > m && !maxRunning.CompareAndSwap(m, now); m = maxRunning.Load() {
				}
				defer running.Add(-1)
				// Hold every activity until all ten run at once: proves the
				// activities are dispatched in parallel.
				select {
				case <-release:
				case <-ctx.Context().Done():
				}
				return n * n, nil
			}),
		)
	}))
	ctx := testCtx(t, 10*time.Second)
	id, err := client.ScheduleNewOrchestration(ctx, "FanOut")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "ten activities running at once", func() bool { return maxRunning.Load() == 10 })
	close(release)
	md := waitDone(t, be, id, 10*time.Second)
	if md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || md.SerializedOutput != "285" {
		t.Fatalf("got %v with output %s, want COMPLETED with 285", md.RuntimeStatus, md.SerializedOutput)
	}
}

func TestTimerFiresOnTime(t *testing.T) {
	be := openTest(t)
	client, _ := startWorker(t, be, newRegistry(t, func(r *task.TaskRegistry) error {
		return r.AddOrchestratorN("Sleep", func(ctx *task.OrchestrationContext) (any, error) {
			start := ctx.CurrentTimeUtc
			if err := ctx.CreateTimer(time.Second).Await(nil); err != nil {
				return nil, err
			}
			return ctx.CurrentTimeUtc.Sub(start).Milliseconds(), nil
		})
	}))
	ctx := testCtx(t, 10*time.Second)
	start := time.Now()
	id, err := client.ScheduleNewOrchestration(ctx, "Sleep")
	if err != nil {
		t.Fatal(err)
	}
	md := waitDone(t, be, id, 10*time.Second)
	elapsed := time.Since(start)
	if md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED {
		t.Fatalf("status %v, want COMPLETED (failure %v)", md.RuntimeStatus, md.FailureDetails)
	}
	if elapsed < time.Second || elapsed > 1500*time.Millisecond {
		t.Errorf("1s timer workflow took %v, want 1s to 1.5s", elapsed)
	}
}

func TestActivityFailure(t *testing.T) {
	be := openTest(t)
	client, _ := startWorker(t, be, newRegistry(t, func(r *task.TaskRegistry) error {
		return errors.Join(
			r.AddActivityN("Boom", func(ctx task.ActivityContext) (any, error) {
				return nil, errors.New("disk on fire")
			}),
			// Catches the failure: the error reaches orchestrator code.
			r.AddOrchestratorN("Catches", func(ctx *task.OrchestrationContext) (any, error) {
				err := ctx.CallActivity("Boom").Await(nil)
				if err == nil {
					return "no error", nil
				}
				return "caught: " + err.Error(), nil
			}),
			// Does not catch it: the orchestration fails.
			r.AddOrchestratorN("Propagates", func(ctx *task.OrchestrationContext) (any, error) {
				return nil, ctx.CallActivity("Boom").Await(nil)
			}),
		)
	}))
	ctx := testCtx(t, 10*time.Second)

	id, err := client.ScheduleNewOrchestration(ctx, "Catches")
	if err != nil {
		t.Fatal(err)
	}
	md := waitDone(t, be, id, 10*time.Second)
	if md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || !strings.Contains(md.SerializedOutput, "disk on fire") {
		t.Errorf("Catches: %v with output %s, want COMPLETED mentioning the activity error", md.RuntimeStatus, md.SerializedOutput)
	}

	id, err = client.ScheduleNewOrchestration(ctx, "Propagates")
	if err != nil {
		t.Fatal(err)
	}
	md = waitDone(t, be, id, 10*time.Second)
	if md.RuntimeStatus != api.RUNTIME_STATUS_FAILED || md.FailureDetails == nil ||
		!strings.Contains(md.FailureDetails.GetErrorMessage(), "disk on fire") {
		t.Errorf("Propagates: %v with failure %v, want FAILED mentioning the activity error", md.RuntimeStatus, md.FailureDetails)
	}
}

func TestContinueAsNew(t *testing.T) {
	be := openTest(t)
	client, _ := startWorker(t, be, newRegistry(t, func(r *task.TaskRegistry) error {
		return r.AddOrchestratorN("Count", func(ctx *task.OrchestrationContext) (any, error) {
			var n int
			if err := ctx.GetInput(&n); err != nil {
				return nil, err
			}
			if n < 10 {
				if err := ctx.CreateTimer(0).Await(nil); err != nil {
					return nil, err
				}
				ctx.ContinueAsNew(n + 1)
			}
			return n, nil
		})
	}))
	ctx := testCtx(t, 10*time.Second)
	id, err := client.ScheduleNewOrchestration(ctx, "Count", api.WithInput(0))
	if err != nil {
		t.Fatal(err)
	}
	md := waitDone(t, be, id, 10*time.Second)
	if md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || md.SerializedOutput != "10" || md.SerializedInput != "10" {
		t.Fatalf("got %v output %s input %s, want COMPLETED, output 10, input 10",
			md.RuntimeStatus, md.SerializedOutput, md.SerializedInput)
	}
	// Continue-as-new truncates the stored history to the last generation.
	state, err := be.GetOrchestrationRuntimeState(ctx, &backend.OrchestrationWorkItem{InstanceID: id})
	if err != nil {
		t.Fatal(err)
	}
	starts := 0
	for _, e := range state.OldEvents() {
		if e.GetExecutionStarted() != nil {
			starts++
		}
	}
	if starts != 1 {
		t.Errorf("stored history has %d ExecutionStarted events, want 1", starts)
	}
}

func TestExternalEventsAndSuspend(t *testing.T) {
	be := openTest(t)
	client, _ := startWorker(t, be, newRegistry(t, func(r *task.TaskRegistry) error {
		return r.AddOrchestratorN("Collect", func(ctx *task.OrchestrationContext) (any, error) {
			sum := 0
			for range 3 {
				var v int
				if err := ctx.WaitForSingleEvent("add", -1).Await(&v); err != nil {
					return nil, err
				}
				sum += v
			}
			return sum, nil
		})
	}))
	ctx := testCtx(t, 10*time.Second)
	id, err := client.ScheduleNewOrchestration(ctx, "Collect")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.WaitForOrchestrationStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := client.SuspendOrchestration(ctx, id, "hold"); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{1, 2} {
		if err := client.RaiseEvent(ctx, id, "add", api.WithEventPayload(v)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the suspension and events to be processed", func() bool {
		md, err := be.GetOrchestrationMetadata(ctx, id)
		if err != nil || md.RuntimeStatus != api.RUNTIME_STATUS_SUSPENDED {
			return false
		}
		// Every event has been consumed by a turn (buffered by the
		// suspended orchestrator, not completing it).
		be.mu.Lock()
		defer be.mu.Unlock()
		inst := be.instances[string(id)]
		return inst == nil || (len(inst.pending) == 0 && !inst.locked)
	})
	if err := client.ResumeOrchestration(ctx, id, "go"); err != nil {
		t.Fatal(err)
	}
	// The resumed instance waits for its third event, and says so.
	waitFor(t, 5*time.Second, "the instance to run again", func() bool {
		md, err := be.GetOrchestrationMetadata(ctx, id)
		return err == nil && md.RuntimeStatus == api.RUNTIME_STATUS_RUNNING
	})
	if err := client.RaiseEvent(ctx, id, "add", api.WithEventPayload(3)); err != nil {
		t.Fatal(err)
	}
	md := waitDone(t, be, id, 10*time.Second)
	if md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || md.SerializedOutput != "6" {
		t.Fatalf("got %v output %s, want COMPLETED with 6", md.RuntimeStatus, md.SerializedOutput)
	}
	// Events for a finished instance are discarded, not errors.
	if err := client.RaiseEvent(ctx, id, "add", api.WithEventPayload(4)); err != nil {
		t.Errorf("raise event on a completed instance: %v", err)
	}
}

func TestTerminateAndPurge(t *testing.T) {
	be := openTest(t)
	client, _ := startWorker(t, be, newRegistry(t, func(r *task.TaskRegistry) error {
		return errors.Join(
			r.AddOrchestratorN("Parent", func(ctx *task.OrchestrationContext) (any, error) {
				return nil, ctx.CallSubOrchestrator("Child", task.WithSubOrchestrationInstanceID(string(ctx.ID)+"_child")).Await(nil)
			}),
			r.AddOrchestratorN("Child", func(ctx *task.OrchestrationContext) (any, error) {
				return nil, ctx.CreateTimer(time.Hour).Await(nil)
			}),
		)
	}))
	ctx := testCtx(t, 10*time.Second)
	id, err := client.ScheduleNewOrchestration(ctx, "Parent")
	if err != nil {
		t.Fatal(err)
	}
	child := id + "_child"
	waitFor(t, 5*time.Second, "the child to run", func() bool {
		md, err := be.GetOrchestrationMetadata(ctx, child)
		return err == nil && md.RuntimeStatus == api.RUNTIME_STATUS_RUNNING
	})
	if err := client.PurgeOrchestrationState(ctx, id); !errors.Is(err, api.ErrNotCompleted) {
		t.Errorf("purge of a running instance = %v, want ErrNotCompleted", err)
	}
	if err := client.TerminateOrchestration(ctx, id, api.WithOutput("stop")); err != nil {
		t.Fatal(err)
	}
	for _, iid := range []api.InstanceID{id, child} {
		md := waitDone(t, be, iid, 10*time.Second)
		if md.RuntimeStatus != api.RUNTIME_STATUS_TERMINATED || md.SerializedOutput != `"stop"` {
			t.Errorf("%s: %v with output %s, want TERMINATED with \"stop\"", iid, md.RuntimeStatus, md.SerializedOutput)
		}
	}
	// The child's hour-long timer went with it.
	be.mu.Lock()
	_, tracked := be.instances[string(child)]
	be.mu.Unlock()
	if tracked {
		t.Errorf("terminated child still tracked in memory (its timer should be gone)")
	}

	if err := client.PurgeOrchestrationState(ctx, id); err != nil { // recursive by default
		t.Fatalf("purge: %v", err)
	}
	for _, iid := range []api.InstanceID{id, child} {
		if _, err := client.FetchOrchestrationMetadata(ctx, iid); !errors.Is(err, api.ErrInstanceNotFound) {
			t.Errorf("%s after purge: %v, want ErrInstanceNotFound", iid, err)
		}
	}
}

// A finished instance's history is committed before the in-memory cache
// forgets the instance, so for a moment the cache still holds the history of
// its last turn but one. Only the lock holder, whose turn cannot commit
// meanwhile, may read the cache: a purge that read it there saw a running
// instance that the store already showed as terminated.
func TestRuntimeStateWithoutLockComesFromStore(t *testing.T) {
	be := openTest(t)
	client, _ := startWorker(t, be, newRegistry(t, func(r *task.TaskRegistry) error {
		return r.AddOrchestratorN("Sleeper", func(ctx *task.OrchestrationContext) (any, error) {
			return nil, ctx.CreateTimer(time.Hour).Await(nil)
		})
	}))
	ctx := testCtx(t, 10*time.Second)
	id, err := client.ScheduleNewOrchestration(ctx, "Sleeper")
	if err != nil {
		t.Fatal(err)
	}
	var running []*backend.HistoryEvent
	waitFor(t, 5*time.Second, "the timer to be scheduled", func() bool {
		h, err := be.History(ctx, id)
		if err != nil || len(h) == 0 || h[len(h)-1].GetTimerCreated() == nil {
			return false
		}
		running = h
		return true
	})
	if err := client.TerminateOrchestration(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitDone(t, be, id, 10*time.Second)
	// The moment between the terminating turn's commit and the cache update.
	be.mu.Lock()
	be.cache.put(string(id), running)
	be.mu.Unlock()

	state, err := be.GetOrchestrationRuntimeState(ctx, &backend.OrchestrationWorkItem{InstanceID: id})
	if err != nil {
		t.Fatal(err)
	}
	if !state.IsCompleted() {
		t.Errorf("runtime state without the lock: %v, want the stored, terminated one", state.RuntimeStatus())
	}
	if err := client.PurgeOrchestrationState(ctx, id); err != nil {
		t.Fatalf("purge of the terminated instance: %v", err)
	}
}

func TestDelayedStart(t *testing.T) {
	be := openTest(t)
	client, _ := startWorker(t, be, newRegistry(t, func(r *task.TaskRegistry) error {
		return r.AddOrchestratorN("Hello", func(ctx *task.OrchestrationContext) (any, error) {
			return "hi", nil
		})
	}))
	ctx := testCtx(t, 10*time.Second)
	startAt := time.Now().Add(300 * time.Millisecond)
	id, err := client.ScheduleNewOrchestration(ctx, "Hello", api.WithStartTime(startAt))
	if err != nil {
		t.Fatal(err)
	}
	md := waitDone(t, be, id, 10*time.Second)
	if md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || md.LastUpdatedAt.Before(startAt) {
		t.Errorf("got %v, completed at %v; want COMPLETED no earlier than %v", md.RuntimeStatus, md.LastUpdatedAt, startAt)
	}
}

func TestWaitForCompletionContext(t *testing.T) {
	be := openTest(t)
	if _, err := be.WaitForOrchestrationCompletion(context.Background(), "nope"); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Errorf("wait for a missing instance = %v, want ErrInstanceNotFound", err)
	}
	mustCreate(t, be, defaultName, "pending")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := be.WaitForOrchestrationCompletion(ctx, "pending"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait with an expiring ctx = %v, want DeadlineExceeded", err)
	}
	be.mu.Lock()
	n := len(be.completion)
	be.mu.Unlock()
	if n != 0 {
		t.Errorf("%d completion waiters left registered, want 0", n)
	}
}
