package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/notify"
	"github.com/taskagent/taskagent/internal/runtime/embedded"
	"github.com/taskagent/taskagent/internal/runtime/embedded/wfbackend"
	"github.com/taskagent/taskagent/internal/task"
	"github.com/taskagent/taskagent/internal/workflow"
)

// seedRequest is the seed's example request for POST /tasks/process.
var seedRequest = processRequest{
	TaskID:          "task-001",
	Title:           "Review PR #42",
	Description:     "Review the authentication refactoring pull request",
	Assignee:        "alice@example.com",
	DeadlineSeconds: 60,
}

// processBody returns req as a JSON body.
func processBody(t *testing.T, req processRequest) string {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// process posts req to /tasks/process and checks the 202 answer: the workflow's
// id, its Location, and status (started or running).
func (a *testAPI) process(req processRequest, status string) workflow.Started {
	a.t.Helper()
	r := a.do("POST", "/tasks/process", processBody(a.t, req))
	got := decode[workflow.Started](a.t, r, http.StatusAccepted)
	want := workflow.Started{ID: "task-workflow-" + req.TaskID, Status: status}
	if got != want {
		a.t.Fatalf("POST /tasks/process for %s: %+v, want %+v", req.TaskID, got, want)
	}
	if loc := r.header.Get("Location"); loc != "/workflows/"+want.ID {
		a.t.Fatalf("Location %q, want /workflows/%s", loc, want.ID)
	}
	return got
}

// workflowStatus returns GET /workflows/{id}.
func (a *testAPI) workflowStatus(id string) workflow.Status {
	a.t.Helper()
	return decode[workflow.Status](a.t, a.do("GET", "/workflows/"+id, ""), http.StatusOK)
}

// waitWorkflow reads GET /workflows/{id} until cond holds for it, and returns
// that status. It fails the test when cond does not hold within testWait; what
// says what the test was waiting for.
func (a *testAPI) waitWorkflow(id, what string, cond func(workflow.Status) bool) workflow.Status {
	a.t.Helper()
	timeout := time.After(testWait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		st := a.workflowStatus(id)
		if cond(st) {
			return st
		}
		select {
		case <-tick.C:
		case <-timeout:
			a.t.Fatalf("workflow %s not %s within %v; last status %+v", id, what, testWait, st)
		}
	}
}

// waitFinished waits for workflow id to end, however it ends.
func (a *testAPI) waitFinished(id string) workflow.Status {
	a.t.Helper()
	return a.waitWorkflow(id, "finished", func(st workflow.Status) bool {
		switch st.RuntimeStatus {
		case "COMPLETED", "FAILED", "TERMINATED":
			return true
		}
		return false
	})
}

// waitRunningStep waits until workflow id is running step: scheduled, or started,
// and not finished.
func (a *testAPI) waitRunningStep(id, step string) workflow.Status {
	a.t.Helper()
	return a.waitWorkflow(id, "running "+step, func(st workflow.Status) bool {
		if st.RuntimeStatus != "RUNNING" || len(st.Timeline) == 0 {
			return false
		}
		last := st.Timeline[len(st.Timeline)-1]
		return last.Name == step && last.Outcome == ""
	})
}

// steps lists a timeline as "name#attempt:outcome", checking what every step must
// have: a kind that fits its name and, once finished, an end not before its start.
func steps(t *testing.T, timeline []workflow.Step) []string {
	t.Helper()
	var out []string
	for i, s := range timeline {
		wantKind := workflow.KindActivity
		switch s.Name {
		case "backoff":
			wantKind = workflow.KindTimer
		case "unassign_task":
			wantKind = workflow.KindCompensation
		}
		if s.Kind != wantKind {
			t.Errorf("step %d %s: kind %q, want %q", i, s.Name, s.Kind, wantKind)
		}
		if s.Started.IsZero() || (s.Outcome != "" && s.Finished.Before(s.Started)) {
			t.Errorf("step %d %s: started %v, finished %v", i, s.Name, s.Started, s.Finished)
		}
		out = append(out, fmt.Sprintf("%s#%d:%s", s.Name, s.Attempt, s.Outcome))
	}
	return out
}

// taskEventTypes lists the types of the events task id published, oldest first.
func (a *testAPI) taskEventTypes(t *testing.T, id string) []string {
	t.Helper()
	var types []string
	for _, e := range a.eventsAfter(t, 0) {
		if e.Source == actors.TaskActorType+"/"+id {
			types = append(types, e.Type)
		}
	}
	return types
}

// The five steps of a workflow that completes, each at its first attempt.
var completedSteps = []string{
	"validate_task#1:ok", "create_task#1:ok", "assign_task#1:ok", "set_deadline_reminder#1:ok", "notify_assignee#1:ok",
}

// TestProcessTask runs the seed's example through the API: 202 at once, then the
// workflow completes its five steps and leaves the task assigned with a deadline
// counted from the workflow's start.
func TestProcessTask(t *testing.T) {
	a := newWorkflowAPI(t, workflowOptions{})
	started := a.process(seedRequest, "started")

	st := a.waitFinished(started.ID)
	if st.RuntimeStatus != "COMPLETED" || st.Failure != nil || st.Output == nil {
		t.Fatalf("workflow ended %s, failure %+v, output %+v; want COMPLETED with an output", st.RuntimeStatus, st.Failure, st.Output)
	}
	if st.ID != started.ID || st.Name != workflow.Name {
		t.Errorf("workflow %q named %q, want %q named %q", st.ID, st.Name, started.ID, workflow.Name)
	}
	if st.CreatedAt.IsZero() || st.UpdatedAt.Before(st.CreatedAt) {
		t.Errorf("created %v, updated %v", st.CreatedAt, st.UpdatedAt)
	}
	// The input as the workflow got it: the request, with the API's retry policy.
	wantPolicy := workflow.DefaultNotifyPolicy()
	wantPolicy.FirstInterval = workflow.Duration(20 * time.Millisecond)
	wantInput := &workflow.Input{
		TaskID: seedRequest.TaskID, Title: seedRequest.Title, Description: seedRequest.Description,
		Assignee: seedRequest.Assignee, DeadlineSeconds: seedRequest.DeadlineSeconds, Notify: &wantPolicy,
	}
	if diff := cmp.Diff(wantInput, st.Input); diff != "" {
		t.Errorf("input (-want +got):\n%s", diff)
	}

	out := st.Output
	if out.Status != workflow.StatusCompleted || out.TaskID != seedRequest.TaskID || len(out.Issues) != 0 || len(out.Compensations) != 0 {
		t.Errorf("output %+v, want completed for %s without issues or compensations", out, seedRequest.TaskID)
	}
	if diff := cmp.Diff(completedSteps, steps(t, st.Timeline)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(out.Steps, st.Timeline); diff != "" {
		t.Errorf("timeline is not the output's steps (-steps +timeline):\n%s", diff)
	}

	// The deadline is measured from the workflow's start, which is when its first
	// step started.
	deadline := st.Timeline[0].Started.Add(time.Duration(seedRequest.DeadlineSeconds) * time.Second)
	if want := "Task assigned to alice@example.com with deadline reminder at " + deadline.Format(time.RFC3339); out.Message != want {
		t.Errorf("message %q, want %q", out.Message, want)
	}
	tk := a.getTask(seedRequest.TaskID)
	if tk.Status != task.Assigned || tk.Assignee != seedRequest.Assignee || tk.Title != seedRequest.Title || tk.Description != seedRequest.Description {
		t.Errorf("task %+v, want assigned to %s", tk, seedRequest.Assignee)
	}
	if tk.Deadline == nil || !tk.Deadline.Equal(deadline) {
		t.Errorf("task deadline %v, want %v", tk.Deadline, deadline)
	}
	want := []string{actors.EventTaskCreated, actors.EventTaskAssigned, actors.EventTaskDeadlineSet, actors.EventTaskNotified}
	if diff := cmp.Diff(want, a.taskEventTypes(t, seedRequest.TaskID)); diff != "" {
		t.Errorf("task events (-want +got):\n%s", diff)
	}
}

// TestProcessTaskTooBusy: while as many workflows as the limit wait to start, a
// new one is answered 429 with a Retry-After and a JSON error, and stores nothing.
func TestProcessTaskTooBusy(t *testing.T) {
	a := newWorkflowAPI(t, workflowOptions{}, func(c *Config) {
		svc := c.Workflows.(workflow.Service)
		svc.MaxWaiting = 1
		c.Workflows = svc
	})
	// The backend hands out no work while stopped: the first workflow waits.
	if err := a.engine.Backend().Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := a.process(seedRequest, "started")

	second := seedRequest
	second.TaskID = "task-002"
	r := a.do("POST", "/tasks/process", processBody(t, second))
	e := wantError(t, r, http.StatusTooManyRequests, errs.TooBusy, "")
	if !strings.Contains(e.Message, "1 workflows are waiting to start") {
		t.Errorf("message %q does not say how many wait", e.Message)
	}
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	wantError(t, a.do("GET", "/workflows/task-workflow-task-002", ""), http.StatusNotFound, errs.NotFound, "")

	if err := a.engine.Backend().Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := a.waitFinished(first.ID); st.RuntimeStatus != "COMPLETED" {
		t.Fatalf("first workflow ended %s", st.RuntimeStatus)
	}
	a.waitFinished(a.process(second, "started").ID)
}

// TestProcessTaskOnce checks that a task has one workflow at a time: posting it
// again while its workflow runs answers with that workflow, once it has finished
// it is a conflict, and after the workflow is deleted the task can be processed
// again. Notifications are held, so the workflow is certainly running until the
// test lets them through.
func TestProcessTaskOnce(t *testing.T) {
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(release)
	a := newWorkflowAPI(t, workflowOptions{hold: hold})

	id := a.process(seedRequest, "started").ID
	st := a.waitRunningStep(id, "notify_assignee")
	if st.Output != nil {
		t.Errorf("running workflow with output %+v", st.Output)
	}
	// The timeline of a running workflow comes from its history.
	want := append(slices.Clone(completedSteps[:4]), "notify_assignee#1:")
	if diff := cmp.Diff(want, steps(t, st.Timeline)); diff != "" {
		t.Errorf("timeline while running (-want +got):\n%s", diff)
	}

	// The same request gets the running workflow; one with other fields is a
	// conflict, not silently dropped.
	a.process(seedRequest, "running")
	other := seedRequest
	other.Title, other.Assignee = "Another title", "bob@example.com"
	b, _ := json.Marshal(other)
	wantError(t, a.do("POST", "/tasks/process", string(b)), http.StatusConflict, errs.Conflict, "")
	// A running workflow cannot be deleted.
	wantError(t, a.do("DELETE", "/workflows/"+id, ""), http.StatusConflict, errs.Conflict, "")

	release()
	st = a.waitFinished(id)
	if st.RuntimeStatus != "COMPLETED" || st.Output == nil || st.Output.Status != workflow.StatusCompleted {
		t.Fatalf("workflow ended %s with output %+v, want COMPLETED and completed", st.RuntimeStatus, st.Output)
	}
	if diff := cmp.Diff(completedSteps, steps(t, st.Timeline)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	if got := a.getTask(seedRequest.TaskID); got.Assignee != seedRequest.Assignee {
		t.Errorf("task assigned to %q, want %q: the second request changed it", got.Assignee, seedRequest.Assignee)
	}

	// Finished: posting the task again is a conflict until its workflow is deleted.
	wantError(t, a.do("POST", "/tasks/process", processBody(t, seedRequest)), http.StatusConflict, errs.Conflict, "")
	r := a.do("DELETE", "/workflows/"+id, "")
	if r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("DELETE /workflows/%s: status %d body %q, want 204 and none", id, r.status, r.body)
	}
	wantError(t, a.do("GET", "/workflows/"+id, ""), http.StatusNotFound, errs.NotFound, "")
	wantError(t, a.do("DELETE", "/workflows/"+id, ""), http.StatusNotFound, errs.NotFound, "")

	// Processed again: the task exists, assigned, so every step is a no-op but the
	// new deadline, and the workflow completes.
	a.process(seedRequest, "started")
	st = a.waitFinished(id)
	if st.RuntimeStatus != "COMPLETED" || st.Output == nil || st.Output.Status != workflow.StatusCompleted {
		t.Fatalf("second workflow ended %s with output %+v, want COMPLETED and completed", st.RuntimeStatus, st.Output)
	}
	if diff := cmp.Diff(completedSteps, steps(t, st.Timeline)); diff != "" {
		t.Errorf("second timeline (-want +got):\n%s", diff)
	}
	deadline := st.Timeline[0].Started.Add(time.Duration(seedRequest.DeadlineSeconds) * time.Second)
	if tk := a.getTask(seedRequest.TaskID); tk.Status != task.Assigned || tk.Deadline == nil || !tk.Deadline.Equal(deadline) {
		t.Errorf("task after the second workflow: status %s deadline %v, want assigned and %v", tk.Status, tk.Deadline, deadline)
	}
}

// TestProcessTaskRejected checks that a task breaking the workflow's rules is
// accepted by the API (202) and then rejected by the workflow's validation step,
// with every problem listed, and never created.
func TestProcessTaskRejected(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(*processRequest)
		issues []string
	}{
		{"short title and description", func(r *processRequest) { r.Title, r.Description = "Hi", "Too short" }, []string{
			"Title must be at least 5 characters (got 2)",
			"Description must be at least 10 characters (got 9)",
		}},
		{"no assignee", func(r *processRequest) { r.Assignee = "" }, []string{"Assignee is required"}},
		{"deadline too far", func(r *processRequest) { r.DeadlineSeconds = int64(task.MaxDeadline/time.Second) + 1 }, []string{
			fmt.Sprintf("deadline_seconds: is more than %d seconds away", int64(task.MaxDeadline/time.Second)),
		}},
	}
	a := newWorkflowAPI(t, workflowOptions{})
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := seedRequest
			req.TaskID = fmt.Sprintf("rejected-%d", i)
			c.edit(&req)
			id := a.process(req, "started").ID

			st := a.waitFinished(id)
			if st.RuntimeStatus != "COMPLETED" || st.Output == nil {
				t.Fatalf("workflow ended %s with output %+v, want COMPLETED with an output", st.RuntimeStatus, st.Output)
			}
			if st.Output.Status != workflow.StatusRejected || !strings.HasPrefix(st.Output.Message, "validation failed: ") {
				t.Errorf("output status %q message %q, want rejected, validation failed", st.Output.Status, st.Output.Message)
			}
			if diff := cmp.Diff(c.issues, st.Output.Issues); diff != "" {
				t.Errorf("issues (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"validate_task#1:ok"}, steps(t, st.Timeline)); diff != "" {
				t.Errorf("timeline (-want +got):\n%s", diff)
			}
			wantError(t, a.do("GET", "/tasks/"+req.TaskID, ""), http.StatusNotFound, errs.NotFound, "")
			if got := a.taskEventTypes(t, req.TaskID); len(got) != 0 {
				t.Errorf("a rejected task published %v", got)
			}
		})
	}
}

// TestProcessTaskCompensated checks a workflow whose notification keeps failing:
// three attempts with two backoffs between them, then the assignment is undone,
// and the task is left pending without an assignee.
func TestProcessTaskCompensated(t *testing.T) {
	const failing = "mallory@example.com"
	a := newWorkflowAPI(t, workflowOptions{failAssignees: []string{failing}})
	req := seedRequest
	req.Assignee = failing
	id := a.process(req, "started").ID

	st := a.waitFinished(id)
	if st.RuntimeStatus != "COMPLETED" || st.Output == nil {
		t.Fatalf("workflow ended %s with output %+v, want COMPLETED with an output", st.RuntimeStatus, st.Output)
	}
	out := st.Output
	if out.Status != workflow.StatusFailed {
		t.Errorf("output status %q, want failed", out.Status)
	}
	if !strings.Contains(out.Message, "notify_assignee failed after 3 attempts") || !strings.Contains(out.Message, "compensation applied: unassign_task") {
		t.Errorf("message %q, want the failed step and the compensation", out.Message)
	}
	want := []string{
		"validate_task#1:ok", "create_task#1:ok", "assign_task#1:ok", "set_deadline_reminder#1:ok",
		"notify_assignee#1:failed", "backoff#1:ok",
		"notify_assignee#2:failed", "backoff#2:ok",
		"notify_assignee#3:failed",
		"unassign_task#1:ok",
	}
	if diff := cmp.Diff(want, steps(t, st.Timeline)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	for _, s := range st.Timeline {
		if s.Name == "notify_assignee" && !strings.Contains(s.Error, "injected failure") {
			t.Errorf("notify attempt %d: error %q, want the injected failure", s.Attempt, s.Error)
		}
		// The policy waits 20ms, then 40ms.
		if s.Name == "backoff" && s.Finished.Sub(s.Started) < 20*time.Millisecond<<(s.Attempt-1) {
			t.Errorf("backoff %d lasted %v", s.Attempt, s.Finished.Sub(s.Started))
		}
	}
	wantComps := []workflow.Compensation{{Step: "unassign_task", Status: "done", Attempts: 1}}
	if diff := cmp.Diff(wantComps, out.Compensations); diff != "" {
		t.Errorf("compensations (-want +got):\n%s", diff)
	}

	tk := a.getTask(req.TaskID)
	if tk.Status != task.Pending || tk.Assignee != "" {
		t.Errorf("task status %s assignee %q, want pending and none", tk.Status, tk.Assignee)
	}
	if slices.Contains(a.taskEventTypes(t, req.TaskID), actors.EventTaskNotified) {
		t.Errorf("a failed notification was recorded on the task")
	}
	// The three failures concern one recipient, not the service: the breaker
	// counts none of them.
	br := decode[notify.Status](t, a.do("GET", "/notifier", ""), http.StatusOK).Breaker
	if br.State != "closed" || br.Counts.Requests != 3 || br.Counts.TotalFailures != 0 {
		t.Errorf("breaker %s with counts %+v, want closed with 3 requests and no failures", br.State, br.Counts)
	}
}

// TestTerminateWorkflow terminates a workflow waiting out a backoff (its assignee
// fails and the wait is an hour): the workflow ends TERMINATED, keeps what its
// steps did, and can then be deleted but not terminated again.
func TestTerminateWorkflow(t *testing.T) {
	const failing = "mallory@example.com"
	a := newWorkflowAPI(t, workflowOptions{failAssignees: []string{failing}, backoff: time.Hour})
	req := seedRequest
	req.Assignee = failing
	id := a.process(req, "started").ID
	a.waitRunningStep(id, "backoff")

	// Waiting on a timer is running: the same id, not another workflow.
	a.process(req, "running")
	wantError(t, a.do("DELETE", "/workflows/"+id, ""), http.StatusConflict, errs.Conflict, "")

	r := a.do("POST", "/workflows/"+id+"/terminate", `{"reason": "operator gave up"}`)
	if r.status != http.StatusAccepted || len(r.body) != 0 {
		t.Fatalf("terminate: status %d body %q, want 202 and none", r.status, r.body)
	}
	st := a.waitFinished(id)
	if st.RuntimeStatus != "TERMINATED" || st.Output != nil || st.Failure != nil {
		t.Fatalf("workflow ended %s, output %+v, failure %+v; want TERMINATED with neither", st.RuntimeStatus, st.Output, st.Failure)
	}
	// The timeline, from the history, stops at the timer it was waiting on.
	want := append(slices.Clone(completedSteps[:4]), "notify_assignee#1:failed", "backoff#1:")
	if diff := cmp.Diff(want, steps(t, st.Timeline)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	// Terminating undoes nothing: the task stays assigned.
	if tk := a.getTask(req.TaskID); tk.Status != task.Assigned || tk.Assignee != failing {
		t.Errorf("task status %s assignee %q, want assigned to %s", tk.Status, tk.Assignee, failing)
	}

	wantError(t, a.do("POST", "/workflows/"+id+"/terminate", ""), http.StatusConflict, errs.Conflict, "")
	wantError(t, a.do("POST", "/tasks/process", processBody(t, req)), http.StatusConflict, errs.Conflict, "")
	if r := a.do("DELETE", "/workflows/"+id, ""); r.status != http.StatusNoContent {
		t.Fatalf("DELETE after terminate: status %d body %s, want 204", r.status, r.body)
	}
	wantError(t, a.do("POST", "/workflows/"+id+"/terminate", ""), http.StatusNotFound, errs.NotFound, "")

	// A workflow that completed cannot be terminated either.
	done := seedRequest
	done.TaskID = "task-done"
	doneID := a.process(done, "started").ID
	if st := a.waitFinished(doneID); st.RuntimeStatus != "COMPLETED" {
		t.Fatalf("workflow %s ended %s, want COMPLETED", doneID, st.RuntimeStatus)
	}
	wantError(t, a.do("POST", "/workflows/"+doneID+"/terminate", `{"reason": "too late"}`), http.StatusConflict, errs.Conflict, "")
	if st := a.workflowStatus(doneID); st.RuntimeStatus != "COMPLETED" || st.Output == nil || st.Output.Status != workflow.StatusCompleted {
		t.Errorf("after a refused terminate: %s with output %+v, want COMPLETED and completed", st.RuntimeStatus, st.Output)
	}
}

// TestWorkflowBadRequests checks what the workflow routes refuse before they
// start or touch any workflow.
func TestWorkflowBadRequests(t *testing.T) {
	a := newWorkflowAPI(t, workflowOptions{})
	long := func(n int) string { return strings.Repeat("x", n) }
	body := func(edit func(*processRequest)) string {
		req := seedRequest
		req.TaskID = "t-new"
		edit(&req)
		return processBody(t, req)
	}
	valid := body(func(*processRequest) {})
	cases := []struct {
		name, method, path, contentType, body string
		status                                int
		code                                  errs.Kind
		field, message                        string
	}{
		// POST /tasks/process: malformed bodies.
		{name: "syntax error", method: "POST", path: "/tasks/process", body: `{"task_id": "t-new", "title": }`, status: 400, code: errs.Invalid, message: "byte offset"},
		{name: "truncated", method: "POST", path: "/tasks/process", body: `{"task_id": "t-new"`, status: 400, code: errs.Invalid, message: "ends inside"},
		{name: "trailing data", method: "POST", path: "/tasks/process", body: valid + ` {}`, status: 400, code: errs.Invalid, message: "follows"},
		{name: "empty body", method: "POST", path: "/tasks/process", status: 400, code: errs.Invalid, message: "empty"},
		{name: "not an object", method: "POST", path: "/tasks/process", body: `["t-new"]`, status: 400, code: errs.Invalid, message: "object"},
		{name: "unknown field", method: "POST", path: "/tasks/process", body: `{"task_id": "t-new", "title": "Review PR", "asignee": "bob"}`, status: 400, code: errs.Invalid, field: "asignee"},
		{name: "wrong type", method: "POST", path: "/tasks/process", body: `{"task_id": "t-new", "title": 42}`, status: 400, code: errs.Invalid, field: "title", message: "must be a string"},

		// Fields the workflow's id and storage depend on.
		{name: "missing task_id", method: "POST", path: "/tasks/process", body: body(func(r *processRequest) { r.TaskID = "" }), status: 400, code: errs.Invalid, field: "task_id"},
		{name: "task_id with space", method: "POST", path: "/tasks/process", body: body(func(r *processRequest) { r.TaskID = "bad id" }), status: 400, code: errs.Invalid, field: "task_id"},
		{name: "task_id leading dash", method: "POST", path: "/tasks/process", body: body(func(r *processRequest) { r.TaskID = "-x" }), status: 400, code: errs.Invalid, field: "task_id"},
		{name: "task_id too long", method: "POST", path: "/tasks/process", body: body(func(r *processRequest) { r.TaskID = long(task.MaxIDLen + 1) }), status: 400, code: errs.Invalid, field: "task_id"},
		{name: "title too long", method: "POST", path: "/tasks/process", body: body(func(r *processRequest) { r.Title = long(task.MaxTitleLen + 1) }), status: 400, code: errs.Invalid, field: "title"},
		{name: "title too long in bytes", method: "POST", path: "/tasks/process", body: body(func(r *processRequest) { r.Title = strings.Repeat("é", task.MaxTitleLen/2+1) }), status: 400, code: errs.Invalid, field: "title"},
		{name: "description too long", method: "POST", path: "/tasks/process", body: body(func(r *processRequest) { r.Description = long(task.MaxDescriptionLen + 1) }), status: 400, code: errs.Invalid, field: "description"},
		{name: "assignee too long", method: "POST", path: "/tasks/process", body: body(func(r *processRequest) { r.Assignee = long(task.MaxAssigneeLen + 1) }), status: 400, code: errs.Invalid, field: "assignee"},
		{name: "deadline negative", method: "POST", path: "/tasks/process", body: body(func(r *processRequest) { r.DeadlineSeconds = -1 }), status: 400, code: errs.Invalid, field: "deadline_seconds"},
		{name: "deadline fraction", method: "POST", path: "/tasks/process", body: `{"task_id": "t-new", "deadline_seconds": 1.5}`, status: 400, code: errs.Invalid, field: "deadline_seconds", message: "must be an integer"},
		{name: "deadline overflow", method: "POST", path: "/tasks/process", body: `{"task_id": "t-new", "deadline_seconds": 99999999999999999999}`, status: 400, code: errs.Invalid, field: "deadline_seconds", message: "out of range"},

		// How the body is sent.
		{name: "oversize body", method: "POST", path: "/tasks/process", body: body(func(r *processRequest) { r.Description = long(DefaultMaxBodyBytes) }), status: 413, code: errs.TooLarge},
		{name: "text/plain", method: "POST", path: "/tasks/process", contentType: "text/plain", body: valid, status: 415, code: kindUnsupportedMediaType},
		{name: "form", method: "POST", path: "/tasks/process", contentType: "application/x-www-form-urlencoded", body: "task_id=t-new", status: 415, code: kindUnsupportedMediaType},
		{name: "latin-1", method: "POST", path: "/tasks/process", contentType: "application/json; charset=iso-8859-1", body: valid, status: 415, code: kindUnsupportedMediaType},

		// Workflow ids in the path.
		{name: "get id with space", method: "GET", path: "/workflows/bad%20id", status: 400, code: errs.Invalid, field: "workflow_id"},
		{name: "get id too long", method: "GET", path: "/workflows/" + long(201), status: 400, code: errs.Invalid, field: "workflow_id"},
		{name: "get id leading dot", method: "GET", path: "/workflows/.x", status: 400, code: errs.Invalid, field: "workflow_id"},
		{name: "terminate bad id", method: "POST", path: "/workflows/bad%20id/terminate", status: 400, code: errs.Invalid, field: "workflow_id"},
		{name: "delete bad id", method: "DELETE", path: "/workflows/a%2Fb", status: 400, code: errs.Invalid, field: "workflow_id"},

		// Unknown workflows.
		{name: "get unknown", method: "GET", path: "/workflows/unknown", status: 404, code: errs.NotFound},
		{name: "get unknown task", method: "GET", path: "/workflows/task-workflow-t-new", status: 404, code: errs.NotFound},
		{name: "terminate unknown", method: "POST", path: "/workflows/unknown/terminate", status: 404, code: errs.NotFound},
		{name: "terminate unknown with reason", method: "POST", path: "/workflows/unknown/terminate", body: `{"reason": "x"}`, status: 404, code: errs.NotFound},
		{name: "delete unknown", method: "DELETE", path: "/workflows/unknown", status: 404, code: errs.NotFound},

		// Terminate bodies.
		{name: "terminate unknown field", method: "POST", path: "/workflows/unknown/terminate", body: `{"why": "x"}`, status: 400, code: errs.Invalid, field: "why"},
		{name: "terminate reason too long", method: "POST", path: "/workflows/unknown/terminate", body: fmt.Sprintf(`{"reason": %q}`, long(1001)), status: 400, code: errs.Invalid, field: "reason"},
		{name: "terminate wrong type", method: "POST", path: "/workflows/unknown/terminate", contentType: "text/plain", body: `{}`, status: 415, code: kindUnsupportedMediaType},

		// Methods.
		{name: "put workflow", method: "PUT", path: "/workflows/unknown", body: `{}`, status: 405, code: kindMethodNotAllowed},
		{name: "get terminate", method: "GET", path: "/workflows/unknown/terminate", status: 405, code: kindMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			last := a.lastEventID()
			r := a.do(c.method, c.path, c.body, contentType(c.contentType)...)
			e := wantError(t, r, c.status, c.code, c.field)
			if !strings.Contains(e.Message, c.message) {
				t.Errorf("message %q does not contain %q", e.Message, c.message)
			}
			wantError(t, a.do("GET", "/workflows/task-workflow-t-new", ""), http.StatusNotFound, errs.NotFound, "")
			a.wantNoEvents(t, last)
		})
	}
}

// TestWorkflowRoutesNeedServices checks that the workflow and notifier routes are
// served only when their services are configured.
func TestWorkflowRoutesNeedServices(t *testing.T) {
	a := newTestAPI(t)
	for _, path := range []string{"/workflows/task-workflow-t-1", "/notifier"} {
		wantError(t, a.do("GET", path, ""), http.StatusNotFound, errs.NotFound, "")
	}
	wantError(t, a.do("POST", "/workflows/task-workflow-t-1/terminate", ""), http.StatusNotFound, errs.NotFound, "")
	// POST /tasks/process is then only GET /tasks/{id}'s path.
	r := a.do("POST", "/tasks/process", processBody(t, seedRequest))
	wantError(t, r, http.StatusMethodNotAllowed, kindMethodNotAllowed, "")
	wantError(t, a.do("GET", "/tasks/"+seedRequest.TaskID, ""), http.StatusNotFound, errs.NotFound, "")
}

// TestNotifierStatus checks GET /notifier: the configuration in force and the
// breaker, which opens after five failed notifications in a row and then fails
// every assignee's notification fast.
func TestNotifierStatus(t *testing.T) {
	a := newWorkflowAPI(t, workflowOptions{failAssignees: []string{"mallory@example.com", " eve@example.com ", "mallory@example.com"}})
	st := decode[notify.Status](t, a.do("GET", "/notifier", ""), http.StatusOK)
	since := st.Breaker.Since
	if since.IsZero() {
		t.Errorf("breaker since %v, want when it was made", since)
	}
	want := notify.Status{
		Kind:          notify.KindLog,
		Timeout:       notify.DefaultTimeout.String(),
		FailAssignees: []string{"eve@example.com", "mallory@example.com"},
		Breaker: notify.BreakerState{
			Name: "notify-log", State: "closed", Since: since,
			Failures: notify.DefaultBreakerFailures, OpenTimeout: notify.DefaultBreakerOpenTimeout.String(), HalfOpenRequests: notify.DefaultBreakerHalfOpenRequests,
		},
	}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("notifier status (-want +got):\n%s", diff)
	}
	// The body as clients see it: an empty list of failing assignees is a list.
	if r := newWorkflowAPI(t, workflowOptions{}).do("GET", "/notifier", ""); !strings.Contains(string(r.body), `"fail_assignees":[]`) {
		t.Errorf("notifier without failures: %s, want fail_assignees []", r.body)
	}

	// Failing assignees concern themselves only; a flaky service is what opens
	// the circuit. Two failing workflows, one after the other: six attempts, and
	// the circuit opens at the fifth failure in a row, so the sixth is refused
	// untried.
	a = newWorkflowAPI(t, workflowOptions{failureRate: 1})
	for _, who := range []string{"mallory@example.com", "eve@example.com"} {
		req := seedRequest
		req.TaskID, req.Assignee = "for-"+strings.TrimSuffix(who, "@example.com"), who
		id := a.process(req, "started").ID
		if st := a.waitFinished(id); st.Output == nil || st.Output.Status != workflow.StatusFailed {
			t.Fatalf("workflow for %s ended with output %+v, want failed", who, st.Output)
		}
	}
	br := decode[notify.Status](t, a.do("GET", "/notifier", ""), http.StatusOK).Breaker
	if br.State != "open" || br.OpenUntil == nil || !br.OpenUntil.After(br.Since) || br.Rejected != 1 {
		t.Fatalf("breaker %s since %v until %v, %d rejected; want open until later, 1 rejected", br.State, br.Since, br.OpenUntil, br.Rejected)
	}

	// Open, it fails the next notification without trying.
	ok := seedRequest
	id := a.process(ok, "started").ID
	st2 := a.waitFinished(id)
	if st2.Output == nil || st2.Output.Status != workflow.StatusFailed {
		t.Fatalf("workflow with the circuit open ended with output %+v, want failed", st2.Output)
	}
	for _, s := range st2.Timeline {
		if s.Name == "notify_assignee" && !strings.Contains(s.Error, "circuit open") {
			t.Errorf("notify attempt %d: error %q, want circuit open", s.Attempt, s.Error)
		}
	}
	if br := decode[notify.Status](t, a.do("GET", "/notifier", ""), http.StatusOK).Breaker; br.Rejected != 4 {
		t.Errorf("breaker rejected %d, want 4", br.Rejected)
	}
}

// statsBody is GET /stats's body with the runtime section newWorkflowAPI
// configures, decoded strictly.
type statsBody struct {
	RSSBytes       int64 `json:"rss_bytes"`
	HeapInuseBytes int64 `json:"heap_inuse_bytes"`
	Goroutines     int   `json:"goroutines"`
	Runtime        *struct {
		Name      string          `json:"name"`
		Actors    embedded.Stats  `json:"actors"`
		Workflows wfbackend.Stats `json:"workflows"`
	} `json:"runtime"`
}

func TestStats(t *testing.T) {
	a := newWorkflowAPI(t, workflowOptions{})
	id := a.process(seedRequest, "started").ID
	if st := a.waitFinished(id); st.RuntimeStatus != "COMPLETED" {
		t.Fatalf("workflow ended %s, want COMPLETED", st.RuntimeStatus)
	}

	got := decode[statsBody](t, a.do("GET", "/stats", ""), http.StatusOK)
	if runtime.GOOS == "linux" && got.RSSBytes <= 0 {
		t.Errorf("rss_bytes %d, want the process's resident size", got.RSSBytes)
	}
	if got.HeapInuseBytes <= 0 || got.Goroutines <= 0 {
		t.Errorf("heap_inuse_bytes %d, goroutines %d; want both positive", got.HeapInuseBytes, got.Goroutines)
	}
	rt := got.Runtime
	if rt == nil {
		t.Fatal("no runtime section")
	}
	// The task's actor was activated and holds its deadline reminder; the engine
	// committed the workflow's progress.
	if rt.Name != "embedded" || rt.Actors.Activations < 1 || rt.Actors.Reminders != 1 {
		t.Errorf("runtime %q with actors %+v, want embedded, activations and the deadline reminder", rt.Name, rt.Actors)
	}
	if rt.Workflows.Transactions <= 0 || rt.Workflows.Changes < rt.Workflows.Transactions {
		t.Errorf("workflow stats %+v, want committed transactions carrying changes", rt.Workflows)
	}

	// Without a runtime section configured, the process's figures only.
	r := newTestAPI(t).do("GET", "/stats", "")
	var plain map[string]any
	if err := json.Unmarshal(decode[json.RawMessage](t, r, http.StatusOK), &plain); err != nil {
		t.Fatal(err)
	}
	if _, ok := plain["runtime"]; ok {
		t.Errorf("runtime section without Config.Stats: %s", r.body)
	}
	if plain["goroutines"].(float64) <= 0 {
		t.Errorf("goroutines %v", plain["goroutines"])
	}
}
