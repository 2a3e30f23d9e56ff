package workflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/task"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/event"
	"github.com/taskagent/taskagent/internal/notify"
	"github.com/taskagent/taskagent/internal/runtime/embedded"
	tasks "github.com/taskagent/taskagent/internal/task"
	"github.com/taskagent/taskagent/internal/workflow"
)

// receiver is a webhook endpoint that counts deliveries per idempotency key, and
// fails the first failFirst requests with 503.
type receiver struct {
	mu        sync.Mutex
	failFirst int
	requests  int
	delivered map[string]int
	bodies    []notify.Notification
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if rc.requests <= rc.failFirst {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	var n notify.Notification
	if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.delivered[r.Header.Get("Idempotency-Key")]++
	rc.bodies = append(rc.bodies, n)
	w.WriteHeader(http.StatusNoContent)
}

// count returns the deliveries of workflow id's notifications: their keys are
// the workflow id and the run.
func (rc *receiver) count(id string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := 0
	for k, v := range rc.delivered {
		if strings.HasPrefix(k, id+"@") {
			n += v
		}
	}
	return n
}

type system struct {
	host   *embedded.Host
	engine *embedded.WorkflowEngine
	svc    workflow.Service
	tasks  actors.Tasks
	recv   *receiver
	reg    *task.TaskRegistry
}

type options struct {
	failAssignees []string
	failFirst     int
	backoff       time.Duration
}

func newSystem(t *testing.T, o options) *system {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	host, err := embedded.Open(t.Context(), dir, []actor.Type{actors.TaskActor()}, embedded.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	recv := &receiver{failFirst: o.failFirst, delivered: map[string]int{}}
	srv := httptest.NewServer(recv)
	n, err := notify.New(notify.Config{Kind: notify.KindWebhook, URL: srv.URL, FailAssignees: o.failAssignees, Timeout: 5 * time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	s := &system{host: host, tasks: actors.Tasks{Invoker: host}, recv: recv, reg: task.NewTaskRegistry()}
	if err := workflow.Register(s.reg, workflow.Activities{Tasks: s.tasks, Notifier: n, Log: log}, log); err != nil {
		t.Fatal(err)
	}
	s.engine, err = embedded.StartWorkflows(t.Context(), dir, s.reg, 16, log)
	if err != nil {
		t.Fatal(err)
	}
	p := workflow.DefaultNotifyPolicy()
	if o.backoff > 0 {
		p.FirstInterval = workflow.Duration(o.backoff)
	}
	s.svc = workflow.Service{Engine: s.engine, Notify: p}
	t.Cleanup(func() {
		s.engine.Close(context.Background())
		host.Close()
		srv.Close()
	})
	return s
}

// finish waits for workflow id to finish and returns its status.
func (s *system) finish(t *testing.T, id string) workflow.Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := s.svc.Get(t.Context(), id)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		switch st.RuntimeStatus {
		case "COMPLETED", "FAILED", "TERMINATED":
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("workflow %s did not finish: %+v", id, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *system) events(t *testing.T, taskID string) []string {
	t.Helper()
	evs, err := s.host.Events().Read(t.Context(), event.TopicTasks, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		if e.Source == actors.TaskActorType+"/"+taskID {
			types = append(types, e.Type)
		}
	}
	return types
}

var seed = workflow.Input{
	TaskID:          "task-001",
	Title:           "Review PR #42",
	Description:     "Review the authentication refactoring pull request",
	Assignee:        "alice@example.com",
	DeadlineSeconds: 60,
}

func TestSeedExampleCompletes(t *testing.T) {
	s := newSystem(t, options{})
	started, err := s.svc.Start(t.Context(), seed)
	if err != nil {
		t.Fatal(err)
	}
	if started != (workflow.Started{ID: "task-workflow-task-001", Status: "started"}) {
		t.Fatalf("started = %+v", started)
	}
	st := s.finish(t, started.ID)
	if st.Output.Status != workflow.StatusCompleted {
		t.Fatalf("output = %+v", st.Output)
	}
	tk, err := s.tasks.Get(t.Context(), seed.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Status != tasks.Assigned || tk.Assignee != seed.Assignee || tk.Deadline == nil {
		t.Fatalf("task = %+v", tk)
	}
	if want := st.CreatedAt.Add(60 * time.Second); tk.Deadline.Sub(want).Abs() > time.Second {
		t.Fatalf("deadline %v, want about %v", tk.Deadline, want)
	}
	if got := s.host.Stats().Reminders; got != 1 {
		t.Fatalf("%d reminders, want the deadline reminder", got)
	}
	if got := s.recv.count(started.ID); got != 1 {
		t.Fatalf("%d notifications delivered, want 1", got)
	}
	want := []string{actors.EventTaskCreated, actors.EventTaskAssigned, actors.EventTaskDeadlineSet, actors.EventTaskNotified}
	if diff := cmp.Diff(want, s.events(t, seed.TaskID)); diff != "" {
		t.Fatalf("task events (-want +got):\n%s", diff)
	}
	var names []string
	for _, step := range st.Timeline {
		names = append(names, step.Name+":"+step.Outcome)
	}
	wantSteps := []string{"validate_task:ok", "create_task:ok", "assign_task:ok", "set_deadline_reminder:ok", "notify_assignee:ok"}
	if diff := cmp.Diff(wantSteps, names); diff != "" {
		t.Fatalf("timeline (-want +got):\n%s", diff)
	}
}

func TestShortTitleIsRejected(t *testing.T) {
	s := newSystem(t, options{})
	in := seed
	in.Title, in.Description = "Fix", "too short"
	started, err := s.svc.Start(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	st := s.finish(t, started.ID)
	if st.Output.Status != workflow.StatusRejected || len(st.Output.Issues) != 2 {
		t.Fatalf("output = %+v, want rejected with two issues", st.Output)
	}
	for i, want := range []string{"Title must be at least 5", "Description must be at least 10"} {
		if !strings.HasPrefix(st.Output.Issues[i], want) {
			t.Errorf("issue %d = %q, want %q...", i, st.Output.Issues[i], want)
		}
	}
	if _, err := s.tasks.Get(t.Context(), in.TaskID); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("rejected task exists: %v", err)
	}
}

func TestFailedNotificationIsCompensated(t *testing.T) {
	s := newSystem(t, options{failAssignees: []string{"bob@example.com"}, backoff: 100 * time.Millisecond})
	in := seed
	in.TaskID, in.Assignee = "task-002", "bob@example.com"
	started, err := s.svc.Start(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	st := s.finish(t, started.ID)
	out := st.Output
	if out.Status != workflow.StatusFailed {
		t.Fatalf("output = %+v, want failed", out)
	}
	if diff := cmp.Diff([]workflow.Compensation{{Step: "unassign_task", Status: "done", Attempts: 1}}, out.Compensations); diff != "" {
		t.Fatalf("compensations (-want +got):\n%s", diff)
	}
	var attempts, backoffs []workflow.Step
	for _, step := range st.Timeline {
		switch step.Name {
		case "notify_assignee":
			attempts = append(attempts, step)
		case "backoff":
			backoffs = append(backoffs, step)
		}
	}
	if len(attempts) != 3 || len(backoffs) != 2 {
		t.Fatalf("timeline has %d notify attempts and %d backoffs, want 3 and 2: %+v", len(attempts), len(backoffs), st.Timeline)
	}
	// Exponential backoff: 100 ms, then 200 ms, on durable timers.
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		if got := backoffs[i].Finished.Sub(backoffs[i].Started); got < want {
			t.Errorf("backoff %d lasted %v, want at least %v", i+1, got, want)
		}
	}
	tk, err := s.tasks.Get(t.Context(), in.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Status != tasks.Pending || tk.Assignee != "" {
		t.Fatalf("after compensation the task is %s assigned to %q, want pending and unassigned", tk.Status, tk.Assignee)
	}
	want := []string{actors.EventTaskCreated, actors.EventTaskAssigned, actors.EventTaskDeadlineSet, actors.EventTaskUnassigned}
	if diff := cmp.Diff(want, s.events(t, in.TaskID)); diff != "" {
		t.Fatalf("task events (-want +got):\n%s", diff)
	}
}

func TestTransientNotificationFailureIsRetried(t *testing.T) {
	s := newSystem(t, options{failFirst: 1, backoff: 50 * time.Millisecond})
	started, err := s.svc.Start(t.Context(), seed)
	if err != nil {
		t.Fatal(err)
	}
	st := s.finish(t, started.ID)
	if st.Output.Status != workflow.StatusCompleted {
		t.Fatalf("output = %+v", st.Output)
	}
	if got := s.recv.count(started.ID); got != 1 {
		t.Fatalf("%d deliveries, want 1", got)
	}
}

func TestStartTwice(t *testing.T) {
	s := newSystem(t, options{failAssignees: []string{"bob@example.com"}, backoff: 300 * time.Millisecond})
	in := seed
	in.Assignee = "bob@example.com" // fails, so it runs long enough to be asked again
	first, err := s.svc.Start(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.svc.Start(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if again != (workflow.Started{ID: first.ID, Status: "running"}) {
		t.Fatalf("second start while running = %+v", again)
	}
	s.finish(t, first.ID)
	if _, err := s.svc.Start(t.Context(), in); errs.KindOf(err) != errs.Conflict {
		t.Fatalf("start after finish: %v, want a conflict", err)
	}
	if err := s.svc.Purge(t.Context(), first.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.Get(t.Context(), first.ID); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("purged workflow: %v, want not found", err)
	}
	if _, err := s.svc.Start(t.Context(), in); err != nil {
		t.Fatalf("start after purge: %v", err)
	}
}

func TestTerminate(t *testing.T) {
	s := newSystem(t, options{failAssignees: []string{"bob@example.com"}, backoff: 10 * time.Second})
	in := seed
	in.Assignee = "bob@example.com"
	started, err := s.svc.Start(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.svc.Purge(t.Context(), started.ID); errs.KindOf(err) != errs.Conflict {
		t.Fatalf("purge while running: %v, want a conflict", err)
	}
	// While it waits to notify again, the timeline comes from the history.
	var timeline []string
	deadline := time.Now().Add(10 * time.Second)
	for len(timeline) < 6 && time.Now().Before(deadline) {
		st, err := s.svc.Get(t.Context(), started.ID)
		if err != nil {
			t.Fatal(err)
		}
		timeline = timeline[:0]
		for _, step := range st.Timeline {
			timeline = append(timeline, fmt.Sprintf("%s#%d:%s", step.Name, step.Attempt, step.Outcome))
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := []string{"validate_task#1:ok", "create_task#1:ok", "assign_task#1:ok", "set_deadline_reminder#1:ok", "notify_assignee#1:failed", "backoff#1:"}
	if diff := cmp.Diff(want, timeline); diff != "" {
		t.Fatalf("running timeline (-want +got):\n%s", diff)
	}
	// A running workflow was last updated by its latest step.
	running, err := s.svc.Get(t.Context(), started.ID)
	if err != nil {
		t.Fatal(err)
	}
	if notified := running.Timeline[4].Finished; running.UpdatedAt.Before(notified) {
		t.Errorf("updated_at %v is before the failed notify step's end %v", running.UpdatedAt, notified)
	}
	if err := s.svc.Terminate(t.Context(), started.ID, "operator"); err != nil {
		t.Fatal(err)
	}
	st := s.finish(t, started.ID)
	if st.RuntimeStatus != "TERMINATED" || st.Reason != "operator" {
		t.Fatalf("runtime status %s, reason %q; want TERMINATED for \"operator\"", st.RuntimeStatus, st.Reason)
	}
	if err := s.svc.Terminate(t.Context(), started.ID, ""); errs.KindOf(err) != errs.Conflict {
		t.Fatalf("terminate a finished workflow: %v, want a conflict", err)
	}

	// The same instance id, purged and started again, runs with its new input,
	// not with the terminated execution's (which the orchestrator had cached).
	if err := s.svc.Purge(t.Context(), started.ID); err != nil {
		t.Fatal(err)
	}
	in.Assignee = seed.Assignee
	again, err := s.svc.Start(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	st = s.finish(t, again.ID)
	if st.Output.Status != workflow.StatusCompleted || !strings.Contains(st.Output.Message, "assigned to "+seed.Assignee) {
		t.Fatalf("restarted workflow: %+v, want completed for %s", st.Output, seed.Assignee)
	}
}

// TestReplayGivesTheSameResult replays a finished workflow's whole history through
// a fresh executor: a deterministic orchestrator reaches the same result.
func TestReplayGivesTheSameResult(t *testing.T) {
	s := newSystem(t, options{failAssignees: []string{"bob@example.com"}, backoff: 20 * time.Millisecond})
	for _, in := range []workflow.Input{seed, {TaskID: "task-002", Title: seed.Title, Description: seed.Description, Assignee: "bob@example.com"}} {
		started, err := s.svc.Start(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		st := s.finish(t, started.ID)
		hist, err := s.engine.History(t.Context(), started.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Everything up to the completion is the input to a replay.
		var replay []*backend.HistoryEvent
		for _, e := range hist {
			if e.GetExecutionCompleted() != nil {
				break
			}
			replay = append(replay, e)
		}
		res, err := task.NewTaskExecutor(s.reg).ExecuteOrchestrator(t.Context(), "replay", replay, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got *workflow.Result
		for _, a := range res.Response.GetActions() {
			if c := a.GetCompleteOrchestration(); c != nil {
				got = new(workflow.Result)
				if err := json.Unmarshal([]byte(c.GetResult().GetValue()), got); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got == nil {
			t.Fatalf("replay of %s did not complete: %+v", started.ID, res.Response.GetActions())
		}
		if diff := cmp.Diff(st.Output, got); diff != "" {
			t.Fatalf("replay of %s differs (-stored +replayed):\n%s", started.ID, diff)
		}
	}
}

// TestScheduleSameIDIsConflict: two requests racing past Service.Start's look both
// reach the engine; the second gets a conflict, which Start turns into "running".
func TestScheduleSameIDIsConflict(t *testing.T) {
	s := newSystem(t, options{})
	id := workflow.InstanceID(seed.TaskID)
	if err := s.engine.Schedule(t.Context(), workflow.Name, id, seed); err != nil {
		t.Fatal(err)
	}
	if err := s.engine.Schedule(t.Context(), workflow.Name, id, seed); errs.KindOf(err) != errs.Conflict {
		t.Fatalf("second schedule: %v, want a conflict", err)
	}
}

// TestStartRefusedWhileTooManyWait: with MaxWaiting workflows scheduled and not
// started, a new one is refused as too busy; a request for one already waiting
// is not, and once they start, new ones are accepted again.
func TestStartRefusedWhileTooManyWait(t *testing.T) {
	s := newSystem(t, options{})
	s.svc.MaxWaiting = 2
	// No work is handed out while the backend is stopped: what is scheduled waits.
	if err := s.engine.Backend().Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	in := func(n int) workflow.Input {
		in := seed
		in.TaskID = fmt.Sprintf("task-%03d", n)
		return in
	}
	var ids []string
	for n := range 2 {
		started, err := s.svc.Start(t.Context(), in(n))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, started.ID)
	}
	if got := s.engine.Waiting(); got != 2 {
		t.Fatalf("%d workflows waiting, want 2", got)
	}
	_, err := s.svc.Start(t.Context(), in(2))
	if errs.KindOf(err) != errs.TooBusy {
		t.Fatalf("third start: %v, want too busy", err)
	}
	if again, err := s.svc.Start(t.Context(), in(0)); err != nil || again.Status != "running" {
		t.Fatalf("repeated start of a waiting workflow: %+v, %v; want running", again, err)
	}

	if err := s.engine.Backend().Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if st := s.finish(t, id); st.Output.Status != workflow.StatusCompleted {
			t.Fatalf("%s: %+v", id, st.Output)
		}
	}
	if got := s.engine.Waiting(); got != 0 {
		t.Fatalf("%d workflows waiting after they all finished, want 0", got)
	}
	started, err := s.svc.Start(t.Context(), in(2))
	if err != nil {
		t.Fatal(err)
	}
	if st := s.finish(t, started.ID); st.Output.Status != workflow.StatusCompleted {
		t.Fatalf("%s: %+v", started.ID, st.Output)
	}
}
