package wfbackend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/task"
)

// sleeper waits on a durable timer of the duration given as input (ms).
func registerSleeper(r *task.TaskRegistry) error {
	return r.AddOrchestratorN("Sleeper", func(ctx *task.OrchestrationContext) (any, error) {
		var ms int
		if err := ctx.GetInput(&ms); err != nil {
			return nil, err
		}
		if err := ctx.CreateTimer(time.Duration(ms) * time.Millisecond).Await(nil); err != nil {
			return nil, err
		}
		return "woke", nil
	})
}

func TestTimerSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.db")
	ctx := testCtx(t, 20*time.Second)

	be1, err := Open(path, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	client, stop, err := runWorker(be1, newRegistry(t, registerSleeper), 8)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	id, err := client.ScheduleNewOrchestration(ctx, "Sleeper", api.WithInput(1000))
	if err != nil {
		t.Fatal(err)
	}
	// RUNNING means the first turn, and with it the timer, is committed.
	waitFor(t, 5*time.Second, "the first turn", func() bool {
		md, err := be1.GetOrchestrationMetadata(ctx, id)
		return err == nil && md.RuntimeStatus == api.RUNTIME_STATUS_RUNNING
	})
	stop()
	if err := be1.Close(); err != nil {
		t.Fatal(err)
	}

	be2 := openAt(t, path)
	if be2.timers.Len() != 1 {
		t.Fatalf("reopened store has %d timers, want 1", be2.timers.Len())
	}
	startWorker(t, be2, newRegistry(t, registerSleeper))
	md := waitDone(t, be2, id, 10*time.Second)
	if md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || md.SerializedOutput != `"woke"` {
		t.Fatalf("got %v output %s, want COMPLETED with \"woke\"", md.RuntimeStatus, md.SerializedOutput)
	}
	if elapsed := time.Since(created); elapsed < time.Second || elapsed > 2*time.Second {
		t.Errorf("1s timer across a restart completed after %v, want 1s to 2s", elapsed)
	}
}

// openWithActivity opens a Backend on path (closed by the caller, not at the
// end of the test: the tests using it reopen the file) and starts instance
// "act" of CallsActivity up to its scheduled activity, which it hands out.
func openWithActivity(t *testing.T, path string, ex backend.Executor, opts ...Option) (*Backend, *backend.ActivityWorkItem) {
	t.Helper()
	be, err := Open(path, testLogger(), append([]Option{WithWorkItemWait(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, be, "CallsActivity", "act")
	runTurn(t, be, ex, mustGetOrch(t, be, "act"))
	awi, err := be.GetActivityWorkItem(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return be, awi
}

// completeActivity runs the activity awi hands out and completes it. It
// returns how many transactions the completion committed.
func completeActivity(t *testing.T, be *Backend, ex backend.Executor, awi *backend.ActivityWorkItem) int64 {
	t.Helper()
	ctx := context.Background()
	var err error
	if awi.Result, err = ex.ExecuteActivity(ctx, awi.InstanceID, awi.NewEvent); err != nil {
		t.Fatal(err)
	}
	before := be.Stats().Transactions
	if err := be.CompleteActivityWorkItem(ctx, awi); err != nil {
		t.Fatal(err)
	}
	return be.Stats().Transactions - before
}

// finishActivity completes the activity awi hands out, runs the turn that
// consumes its result and checks that "act" completed.
func finishActivity(t *testing.T, be *Backend, ex backend.Executor, awi *backend.ActivityWorkItem) {
	t.Helper()
	completeActivity(t, be, ex, awi)
	runTurn(t, be, ex, mustGetOrch(t, be, "act"))
	md, err := be.GetOrchestrationMetadata(context.Background(), "act")
	if err != nil || md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED {
		t.Fatalf("metadata = %+v, %v; want COMPLETED", md, err)
	}
}

func TestLockedWorkIsFreeAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.db")
	ctx := context.Background()
	ex := task.NewTaskExecutor(contractRegistry(t))

	// One locked activity, one locked orchestration work item, then the
	// process "dies": nothing is completed or abandoned.
	be1, _ := openWithActivity(t, path, ex)
	mustCreate(t, be1, defaultName, "orch")
	lost := mustGetOrch(t, be1, "orch")
	if err := be1.Close(); err != nil {
		t.Fatal(err)
	}

	be2 := openAt(t, path, WithWorkItemWait(0))
	// Available at once: no lock expiry to wait for.
	awi, err := be2.GetActivityWorkItem(ctx)
	if err != nil || awi.InstanceID != "act" {
		t.Fatalf("activity after reopen = %v, %v; want the locked one", awi, err)
	}
	wi := mustGetOrch(t, be2, "orch")
	if len(wi.NewEvents) != 1 || wi.NewEvents[0].GetExecutionStarted() == nil {
		t.Fatalf("orchestration events after reopen = %v", wi.NewEvents)
	}
	// The dead process's lock token means nothing to the new one.
	if err := be2.AbandonOrchestrationWorkItem(ctx, lost); err == nil {
		t.Error("abandon with the previous process's lock succeeded, want ErrWorkItemLockLost")
	}
	runTurn(t, be2, ex, wi)
	if awi.Result, err = ex.ExecuteActivity(ctx, awi.InstanceID, awi.NewEvent); err != nil {
		t.Fatal(err)
	}
	if err := be2.CompleteActivityWorkItem(ctx, awi); err != nil {
		t.Fatal(err)
	}
	runTurn(t, be2, ex, mustGetOrch(t, be2, "act"))
	for _, id := range []api.InstanceID{"act", "orch"} {
		md, err := be2.GetOrchestrationMetadata(ctx, id)
		if err != nil || md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED {
			t.Errorf("%s = %+v, %v; want COMPLETED", id, md, err)
		}
	}
}

// An activity result is held in memory until the turn that consumes it
// commits, so completing an activity costs no commit; if the process dies
// before that turn, the activity is still scheduled and runs again.
func TestActivityResultBeforeTurnIsRedoneAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.db")
	ctx := context.Background()
	ex := task.NewTaskExecutor(contractRegistry(t))

	be1, awi := openWithActivity(t, path, ex)
	if n := completeActivity(t, be1, ex, awi); n != 0 {
		t.Errorf("completing an activity of a running instance committed %d transactions, want 0", n)
	}
	// The result reaches the orchestration at once...
	wi := mustGetOrch(t, be1, "act")
	if len(wi.NewEvents) != 1 || wi.NewEvents[0].GetTaskCompleted() == nil {
		t.Fatalf("events after the activity = %v, want its TaskCompleted", wi.NewEvents)
	}
	// ...but the process dies before that turn commits.
	if err := be1.Close(); err != nil {
		t.Fatal(err)
	}

	be2 := openAt(t, path, WithWorkItemWait(0))
	assertNoOrchWork(t, be2)
	again, err := be2.GetActivityWorkItem(ctx)
	if err != nil || again.InstanceID != "act" || again.NewEvent.GetEventId() != awi.NewEvent.GetEventId() {
		t.Fatalf("activity after reopen = %v, %v; want the same activity again", again, err)
	}
	finishActivity(t, be2, ex, again)
	// The turn wrote the result to the history: nothing is left to run.
	if _, err := be2.GetActivityWorkItem(ctx); !errors.Is(err, backend.ErrNoWorkItems) {
		t.Errorf("activity work after completion = %v, want ErrNoWorkItems", err)
	}
	be2.Close()
	be3 := openAt(t, path, WithWorkItemWait(0))
	if _, err := be3.GetActivityWorkItem(ctx); !errors.Is(err, backend.ErrNoWorkItems) {
		t.Errorf("activity work after reopening a completed instance = %v, want ErrNoWorkItems", err)
	}
}

// A result that went to the inbox (the instance's history was not cached, so
// the result could not wait in memory) is durable: after a reopen the activity
// does not run again, and the orchestration gets the result.
func TestCommittedActivityResultIsNotRedoneAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.db")
	ctx := context.Background()
	ex := task.NewTaskExecutor(contractRegistry(t))

	be1, awi := openWithActivity(t, path, ex, WithHistoryCacheSize(0))
	if n := completeActivity(t, be1, ex, awi); n != 1 {
		t.Fatalf("completing the activity committed %d transactions, want 1 (its inbox row)", n)
	}
	if err := be1.Close(); err != nil {
		t.Fatal(err)
	}

	be2 := openAt(t, path, WithWorkItemWait(0))
	assertNoActivityWork(t, be2)
	wi := mustGetOrch(t, be2, "act")
	if len(wi.NewEvents) != 1 || wi.NewEvents[0].GetTaskCompleted().GetTaskScheduledId() != awi.NewEvent.GetEventId() {
		t.Fatalf("events after reopen = %v, want the activity's TaskCompleted", wi.NewEvents)
	}
	runTurn(t, be2, ex, wi)
	if md, err := be2.GetOrchestrationMetadata(ctx, "act"); err != nil || md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED {
		t.Fatalf("act = %+v, %v; want COMPLETED", md, err)
	}
}

// The crash tests re-run this test binary as a child process that starts a
// workflow on a database file and is SIGKILLed at a chosen point; the parent
// then reopens the file and must see the workflow complete.
const (
	crashDBEnv   = "WFBACKEND_CRASH_DB"
	crashModeEnv = "WFBACKEND_CRASH_MODE"
	crashReady   = "WFBACKEND-CRASH-READY"
	crashID      = "crash-1"
)

// registerCrashFlow registers a workflow with a 1s durable timer followed by
// an activity. hang is the activity's body: the child's blocks, the parent's
// returns.
func registerCrashFlow(hang func() error) func(r *task.TaskRegistry) error {
	return func(r *task.TaskRegistry) error {
		return errors.Join(
			r.AddOrchestratorN("CrashFlow", func(ctx *task.OrchestrationContext) (any, error) {
				if err := ctx.CreateTimer(time.Second).Await(nil); err != nil {
					return nil, err
				}
				var out string
				err := ctx.CallActivity("Hang").Await(&out)
				return out, err
			}),
			r.AddActivityN("Hang", func(ctx task.ActivityContext) (any, error) {
				return "survived", hang()
			}),
		)
	}
}

// TestCrashChild is the child process of TestCrashRecovery; on its own it
// skips.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashDBEnv)
	if path == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	mode := os.Getenv(crashModeEnv)
	ready := func() { fmt.Println(crashReady) }
	be, err := Open(path, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	client, _, err := runWorker(be, newRegistry(t, registerCrashFlow(func() error {
		if mode == "activity" {
			ready() // the activity is running, so it is locked
		}
		select {} // until SIGKILL
	})), 8)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, err := client.ScheduleNewOrchestration(ctx, "CrashFlow", api.WithInstanceID(crashID))
	if err != nil {
		t.Fatal(err)
	}
	if mode == "timer" {
		for {
			md, err := be.GetOrchestrationMetadata(ctx, id)
			if err == nil && md.RuntimeStatus == api.RUNTIME_STATUS_RUNNING {
				break // the timer is durable
			}
			time.Sleep(time.Millisecond)
		}
		ready()
	}
	select {} // until SIGKILL
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, mode := range []string{"timer", "activity"} {
		t.Run("killed during "+mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "wf.db")
			killed := runCrashChild(t, path, mode)

			reopened := time.Now()
			be := openAt(t, path)
			startWorker(t, be, newRegistry(t, registerCrashFlow(func() error { return nil })))
			md := waitDone(t, be, crashID, 15*time.Second)
			if md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || md.SerializedOutput != `"survived"` {
				t.Fatalf("got %v output %s (failure %v), want COMPLETED with \"survived\"",
					md.RuntimeStatus, md.SerializedOutput, md.FailureDetails)
			}
			// The timer fires when it was due, not earlier and not a restart
			// later; a locked activity is redone at once, not after a lock
			// timeout.
			if age := md.LastUpdatedAt.Sub(md.CreatedAt); age < time.Second {
				t.Errorf("completed %v after creation, before the 1s timer was due", age)
			}
			switch mode {
			case "timer":
				if late := md.LastUpdatedAt.Sub(md.CreatedAt.Add(time.Second)); late > time.Second {
					t.Errorf("completed %v after the timer was due", late)
				}
			case "activity":
				if d := time.Since(reopened); d > 2*time.Second {
					t.Errorf("the interrupted activity took %v after reopening to complete", d)
				}
			}
			t.Logf("killed %v; reopened and completed after %v", killed.Round(time.Millisecond),
				time.Since(reopened).Round(time.Millisecond))
		})
	}
}

// runCrashChild starts the child, waits for it to report ready, SIGKILLs it
// and returns how long it ran.
func runCrashChild(t *testing.T, path, mode string) time.Duration {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), crashDBEnv+"="+path, crashModeEnv+"="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == crashReady {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("child exited before it was ready")
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("child not ready after 30s")
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup runs
		t.Fatal(err)
	}
	_ = cmd.Wait()
	return time.Since(start)
}
