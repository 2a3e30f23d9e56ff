package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/event"
	"github.com/taskagent/taskagent/internal/task"
)

func TestCreateTask(t *testing.T) {
	a := newTestAPI(t)
	created := a.clock.Now()

	body := `{"task_id": "task-001", "title": "Review PR #42", "description": "Review the auth refactoring",
		"assignee": "alice@example.com", "deadline_seconds": 60}`
	r := a.do("POST", "/tasks", body)
	got := decode[task.Task](t, r, http.StatusCreated)
	deadline := created.Add(60 * time.Second)
	want := task.Task{
		ID: "task-001", Title: "Review PR #42", Description: "Review the auth refactoring",
		Status: task.Assigned, Assignee: "alice@example.com", Deadline: &deadline,
		CreatedAt: created, UpdatedAt: created,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("created task (-want +got):\n%s", diff)
	}
	if loc := r.header.Get("Location"); loc != "/tasks/task-001" {
		t.Errorf("Location %q, want /tasks/task-001", loc)
	}
	if diff := cmp.Diff(want, a.getTask("task-001")); diff != "" {
		t.Errorf("stored task (-want +got):\n%s", diff)
	}

	// One event, carrying the task as created.
	evs := a.eventsAfter(t, 0)
	if len(evs) != 1 {
		t.Fatalf("%d events after create, want 1: %+v", len(evs), evs)
	}
	if d := taskEventOf(t, evs[0]); d.EventType != actors.EventTaskCreated || d.PreviousStatus != "" {
		t.Errorf("event %s previous_status %q, want %s and none", d.EventType, d.PreviousStatus, actors.EventTaskCreated)
	} else if diff := cmp.Diff(want, d.Task); diff != "" {
		t.Errorf("task in the created event (-want +got):\n%s", diff)
	}
	last := a.lastEventID()

	// The same request again, later but before the deadline (a client retrying):
	// 200 with the task as it was, the deadline not moved, nothing published.
	// TestTaskOverdue covers the deadline passing.
	a.clock.Advance(30 * time.Second)
	again := decode[task.Task](t, a.do("POST", "/tasks", body), http.StatusOK)
	if diff := cmp.Diff(want, again); diff != "" {
		t.Errorf("repeated create (-want +got):\n%s", diff)
	}

	// The same id with another description: 409, and nothing changes.
	r = a.do("POST", "/tasks", `{"task_id": "task-001", "title": "Review PR #42", "description": "something else"}`)
	wantError(t, r, http.StatusConflict, errs.Conflict, "")
	if diff := cmp.Diff(want, a.getTask("task-001")); diff != "" {
		t.Errorf("task after conflicting create (-want +got):\n%s", diff)
	}
	a.wantNoEvents(t, last)

	// Only a title is required; the task starts pending with no deadline.
	got = decode[task.Task](t, a.do("POST", "/tasks", `{"task_id": "t2", "title": "Minimal"}`), http.StatusCreated)
	if got.Status != task.Pending || got.Deadline != nil || got.Assignee != "" {
		t.Errorf("minimal task: status %q deadline %v assignee %q, want pending, none, none", got.Status, got.Deadline, got.Assignee)
	}
}

func TestGetTaskNotFound(t *testing.T) {
	a := newTestAPI(t)
	wantError(t, a.do("GET", "/tasks/nope", ""), http.StatusNotFound, errs.NotFound, "")
}

// TestTaskLifecycle walks a task through every mutating endpoint, each step from
// the state the previous one left, and checks what each step published: one event
// with the task as answered for a change, nothing for a no-op.
func TestTaskLifecycle(t *testing.T) {
	a := newTestAPI(t)
	a.createTask("t-1", "Write report")
	steps := []struct {
		path, body   string
		wantStatus   task.Status
		wantAssignee string
		wantEvent    string      // "" for a no-op
		wantPrevious task.Status // the event's previous_status
	}{
		{"/tasks/t-1/assign", `{"assignee": "bob"}`, task.Assigned, "bob", actors.EventTaskAssigned, task.Pending},
		{"/tasks/t-1/assign", `{"assignee": "bob"}`, task.Assigned, "bob", "", ""}, // twice: a no-op
		{"/tasks/t-1/status", `{"status": "in_progress"}`, task.InProgress, "bob", actors.EventTaskStatusChanged, task.Assigned},
		{"/tasks/t-1/unassign", `{"assignee": "carol"}`, task.InProgress, "bob", "", ""}, // not carol's
		{"/tasks/t-1/unassign", "", task.Pending, "", actors.EventTaskUnassigned, task.InProgress},
		{"/tasks/t-1/unassign", "", task.Pending, "", "", ""}, // twice: a no-op
		{"/tasks/t-1/assign", `{"assignee": "carol"}`, task.Assigned, "carol", actors.EventTaskAssigned, task.Pending},
		{"/tasks/t-1/unassign", `{"assignee": "carol"}`, task.Pending, "", actors.EventTaskUnassigned, task.Assigned},
		{"/tasks/t-1/deadline", `{"deadline_seconds": 3600}`, task.Pending, "", actors.EventTaskDeadlineSet, ""},
		{"/tasks/t-1/status", `{"status": "completed"}`, task.Completed, "", actors.EventTaskStatusChanged, task.Pending},
		{"/tasks/t-1/status", `{"status": "completed"}`, task.Completed, "", "", ""}, // twice: a no-op
	}
	for i, st := range steps {
		a.clock.Advance(time.Second)
		last := a.lastEventID()
		got := decode[task.Task](t, a.do("POST", st.path, st.body), http.StatusOK)
		if got.Status != st.wantStatus || got.Assignee != st.wantAssignee {
			t.Fatalf("step %d, POST %s %s: status %q assignee %q, want %q %q", i, st.path, st.body, got.Status, got.Assignee, st.wantStatus, st.wantAssignee)
		}
		if diff := cmp.Diff(got, a.getTask("t-1")); diff != "" {
			t.Fatalf("step %d: stored task differs from the response (-response +stored):\n%s", i, diff)
		}
		evs := a.eventsAfter(t, last)
		if st.wantEvent == "" {
			if len(evs) != 0 || !got.UpdatedAt.Before(a.clock.Now()) {
				t.Fatalf("step %d, a no-op: %d events and updated_at %v, want none and the time before", i, len(evs), got.UpdatedAt)
			}
			continue
		}
		if len(evs) != 1 {
			t.Fatalf("step %d, POST %s %s: %d events, want one %s: %+v", i, st.path, st.body, len(evs), st.wantEvent, evs)
		}
		d := taskEventOf(t, evs[0])
		if d.EventType != st.wantEvent || d.PreviousStatus != st.wantPrevious || !d.Timestamp.Equal(a.clock.Now()) {
			t.Errorf("step %d: event %s previous_status %q at %v, want %s %q at %v", i, d.EventType, d.PreviousStatus, d.Timestamp, st.wantEvent, st.wantPrevious, a.clock.Now())
		}
		if diff := cmp.Diff(got, d.Task); diff != "" {
			t.Errorf("step %d: task in the event differs from the response (-response +event):\n%s", i, diff)
		}
	}
	got := a.getTask("t-1")
	// The deadline was set 9 steps (seconds) after creation, for an hour later.
	want := a.clock.Now().Add(-2 * time.Second).Add(time.Hour)
	if got.Deadline == nil || !got.Deadline.Equal(want) {
		t.Errorf("deadline %v, want %v", got.Deadline, want)
	}
}

// TestTaskOverdue checks that the deadline the API computes from its clock and the
// reminder the actor arms for it agree: when the shared clock reaches the deadline,
// the runtime makes the task overdue and publishes it, with no call to the API.
func TestTaskOverdue(t *testing.T) {
	t.Parallel() // the runtime's timer waits out the deadline in real time: a second
	a := newTestAPI(t)
	created := decode[task.Task](t, a.do("POST", "/tasks", `{"task_id": "t-1", "title": "Soon", "deadline_seconds": 1}`), http.StatusCreated)
	if want := a.clock.Now().Add(time.Second); created.Deadline == nil || !created.Deadline.Equal(want) {
		t.Fatalf("deadline %v, want %v", created.Deadline, want)
	}
	s := a.openStream(t, fmt.Sprintf("?topic=%s&after=%d", event.TopicTasks, a.lastEventID()))

	a.clock.Advance(time.Second)
	d := taskEventOf(t, s.nextEvent(t))
	if d.EventType != actors.EventTaskOverdue || d.TaskID != "t-1" || d.PreviousStatus != task.Pending || d.Task.Status != task.Overdue {
		t.Fatalf("event %s for %q, previous_status %q status %q, want %s for t-1, pending to overdue",
			d.EventType, d.TaskID, d.PreviousStatus, d.Task.Status, actors.EventTaskOverdue)
	}
	if !d.Timestamp.Equal(*created.Deadline) {
		t.Errorf("overdue at %v, want at the deadline %v", d.Timestamp, *created.Deadline)
	}
	if diff := cmp.Diff(d.Task, a.getTask("t-1")); diff != "" {
		t.Errorf("stored task differs from the event (-event +stored):\n%s", diff)
	}

	// A later deadline reopens the task, which is published as two events.
	got := decode[task.Task](t, a.do("POST", "/tasks/t-1/deadline", `{"deadline_seconds": 60}`), http.StatusOK)
	if got.Status != task.Pending {
		t.Errorf("status %q after a new deadline, want pending", got.Status)
	}
	for _, want := range []string{actors.EventTaskDeadlineSet, actors.EventTaskStatusChanged} {
		d := taskEventOf(t, s.nextEvent(t))
		if d.EventType != want || d.PreviousStatus != task.Overdue {
			t.Errorf("event %s previous_status %q, want %s from overdue", d.EventType, d.PreviousStatus, want)
		}
		if diff := cmp.Diff(got, d.Task); diff != "" {
			t.Errorf("task in the %s event differs from the response (-response +event):\n%s", want, diff)
		}
	}
}

// TestTaskRuleConflicts checks that moves the task's rules forbid answer 409 and
// leave the task as it was.
func TestTaskRuleConflicts(t *testing.T) {
	a := newTestAPI(t)
	a.createTask("open", "Open task")
	decode[task.Task](t, a.do("POST", "/tasks/open/status", `{"status": "in_progress"}`), http.StatusOK)
	a.createTask("done", "Finished task")
	decode[task.Task](t, a.do("POST", "/tasks/done/status", `{"status": "completed"}`), http.StatusOK)

	cases := []struct{ id, path, body string }{
		{"open", "status", `{"status": "assigned"}`}, // only Assign assigns
		{"open", "status", `{"status": "pending"}`},  // only Unassign makes it pending again
		{"open", "status", `{"status": "overdue"}`},  // only the deadline makes a task overdue
		{"done", "status", `{"status": "in_progress"}`},
		{"done", "status", `{"status": "cancelled"}`},
		{"done", "assign", `{"assignee": "bob"}`},
		{"done", "unassign", ``},
		{"done", "deadline", `{"deadline_seconds": 60}`},
	}
	for _, c := range cases {
		t.Run(c.id+"/"+c.path+c.body, func(t *testing.T) {
			before, last := a.getTask(c.id), a.lastEventID()
			wantError(t, a.do("POST", "/tasks/"+c.id+"/"+c.path, c.body), http.StatusConflict, errs.Conflict, "")
			if diff := cmp.Diff(before, a.getTask(c.id)); diff != "" {
				t.Errorf("task changed by a refused request (-before +after):\n%s", diff)
			}
			a.wantNoEvents(t, last)
		})
	}
}

// TestTaskBadRequests sends requests that must be refused before any service is
// called, and checks each answer and that no task changed or appeared.
func TestTaskBadRequests(t *testing.T) {
	a := newTestAPI(t)
	a.createTask("t-1", "Write report")
	long := func(n int) string { return strings.Repeat("x", n) }
	create := func(fields string) string { return `{"task_id": "t-new", ` + fields + `}` }
	type tc struct {
		name, method, path, contentType, body string
		status                                int
		code                                  errs.Kind
		field, message                        string
	}
	cases := []tc{
		// Malformed bodies.
		{name: "syntax error", method: "POST", path: "/tasks", body: `{"task_id": "t-new", "title": }`, status: 400, code: errs.Invalid, message: "byte offset 31"},
		{name: "truncated", method: "POST", path: "/tasks", body: `{"task_id": "t-new"`, status: 400, code: errs.Invalid, message: "ends inside"},
		{name: "unknown field", method: "POST", path: "/tasks", body: create(`"title": "x", "asignee": "bob"`), status: 400, code: errs.Invalid, field: "asignee"},
		{name: "trailing garbage", method: "POST", path: "/tasks", body: create(`"title": "x"`) + ` garbage`, status: 400, code: errs.Invalid, message: "follows"},
		{name: "two objects", method: "POST", path: "/tasks", body: create(`"title": "x"`) + `{"task_id": "t-new"}`, status: 400, code: errs.Invalid, message: "follows"},
		{name: "wrong type", method: "POST", path: "/tasks", body: create(`"title": 42`), status: 400, code: errs.Invalid, field: "title", message: "must be a string"},
		{name: "not an object", method: "POST", path: "/tasks", body: `["t-new"]`, status: 400, code: errs.Invalid, message: "object"},
		{name: "empty body", method: "POST", path: "/tasks", status: 400, code: errs.Invalid, message: "empty"},
		{name: "null body", method: "POST", path: "/tasks", body: `null`, status: 400, code: errs.Invalid, field: "task_id"},

		// Missing, too long or malformed fields.
		{name: "missing task_id", method: "POST", path: "/tasks", body: `{"title": "x"}`, status: 400, code: errs.Invalid, field: "task_id"},
		{name: "task_id too long", method: "POST", path: "/tasks", body: fmt.Sprintf(`{"task_id": %q, "title": "x"}`, long(task.MaxIDLen+1)), status: 400, code: errs.Invalid, field: "task_id"},
		{name: "task_id bad chars", method: "POST", path: "/tasks", body: `{"task_id": "bad id!", "title": "x"}`, status: 400, code: errs.Invalid, field: "task_id"},
		{name: "task_id leading dash", method: "POST", path: "/tasks", body: `{"task_id": "-x", "title": "x"}`, status: 400, code: errs.Invalid, field: "task_id"},
		{name: "missing title", method: "POST", path: "/tasks", body: create(`"description": "d"`), status: 400, code: errs.Invalid, field: "title"},
		{name: "blank title", method: "POST", path: "/tasks", body: create(`"title": "  "`), status: 400, code: errs.Invalid, field: "title"},
		{name: "title too long", method: "POST", path: "/tasks", body: create(fmt.Sprintf(`"title": %q`, long(task.MaxTitleLen+1))), status: 400, code: errs.Invalid, field: "title"},
		{name: "title control char", method: "POST", path: "/tasks", body: create(`"title": "a\u0007b"`), status: 400, code: errs.Invalid, field: "title"},
		{name: "description too long", method: "POST", path: "/tasks", body: create(fmt.Sprintf(`"title": "x", "description": %q`, long(task.MaxDescriptionLen+1))), status: 400, code: errs.Invalid, field: "description"},
		{name: "assignee too long", method: "POST", path: "/tasks", body: create(fmt.Sprintf(`"title": "x", "assignee": %q`, long(task.MaxAssigneeLen+1))), status: 400, code: errs.Invalid, field: "assignee"},
		{name: "deadline zero", method: "POST", path: "/tasks", body: create(`"title": "x", "deadline_seconds": 0`), status: 400, code: errs.Invalid, field: "deadline_seconds"},
		{name: "deadline negative", method: "POST", path: "/tasks", body: create(`"title": "x", "deadline_seconds": -5`), status: 400, code: errs.Invalid, field: "deadline_seconds"},
		{name: "deadline fraction", method: "POST", path: "/tasks", body: create(`"title": "x", "deadline_seconds": 1.5`), status: 400, code: errs.Invalid, field: "deadline_seconds", message: "must be an integer"},
		{name: "deadline string", method: "POST", path: "/tasks", body: create(`"title": "x", "deadline_seconds": "60"`), status: 400, code: errs.Invalid, field: "deadline_seconds"},
		{name: "deadline too far", method: "POST", path: "/tasks", body: create(fmt.Sprintf(`"title": "x", "deadline_seconds": %d`, int64(task.MaxDeadline/time.Second)+1)), status: 400, code: errs.Invalid, field: "deadline_seconds"},
		{name: "deadline overflow", method: "POST", path: "/tasks", body: create(`"title": "x", "deadline_seconds": 99999999999999999999`), status: 400, code: errs.Invalid, field: "deadline_seconds", message: "out of range"},

		// Content types.
		{name: "text/plain", method: "POST", path: "/tasks", contentType: "text/plain", body: create(`"title": "x"`), status: 415, code: kindUnsupportedMediaType},
		{name: "form", method: "POST", path: "/tasks", contentType: "application/x-www-form-urlencoded", body: "task_id=t-new&title=x", status: 415, code: kindUnsupportedMediaType},
		{name: "latin-1", method: "POST", path: "/tasks", contentType: "application/json; charset=iso-8859-1", body: create(`"title": "x"`), status: 415, code: kindUnsupportedMediaType},
		{name: "bad media type", method: "POST", path: "/tasks", contentType: "json", body: create(`"title": "x"`), status: 415, code: kindUnsupportedMediaType},

		// Too large.
		{name: "oversize body", method: "POST", path: "/tasks", body: create(fmt.Sprintf(`"title": "x", "description": %q`, long(DefaultMaxBodyBytes))), status: 413, code: errs.TooLarge},

		// Ids in the path, on every task route.
		{name: "get id too long", method: "GET", path: "/tasks/" + long(task.MaxIDLen+1), status: 400, code: errs.Invalid, field: "task_id"},
		{name: "get id with space", method: "GET", path: "/tasks/bad%20id", status: 400, code: errs.Invalid, field: "task_id"},
		{name: "get id with slash", method: "GET", path: "/tasks/t-1%2Fx", status: 400, code: errs.Invalid, field: "task_id"},
		{name: "get id with bang", method: "GET", path: "/tasks/t-1!", status: 400, code: errs.Invalid, field: "task_id"},
		{name: "assign bad id", method: "POST", path: "/tasks/bad$id/assign", body: `{"assignee": "bob"}`, status: 400, code: errs.Invalid, field: "task_id"},
		{name: "unassign bad id", method: "POST", path: "/tasks/.x/unassign", status: 400, code: errs.Invalid, field: "task_id"},
		{name: "status bad id", method: "POST", path: "/tasks/" + long(task.MaxIDLen+1) + "/status", body: `{"status": "completed"}`, status: 400, code: errs.Invalid, field: "task_id"},
		{name: "deadline bad id", method: "POST", path: "/tasks/a%00b/deadline", body: `{"deadline_seconds": 60}`, status: 400, code: errs.Invalid, field: "task_id"},

		// Unknown tasks.
		{name: "assign unknown", method: "POST", path: "/tasks/nope/assign", body: `{"assignee": "bob"}`, status: 404, code: errs.NotFound},
		{name: "unassign unknown", method: "POST", path: "/tasks/nope/unassign", status: 404, code: errs.NotFound},
		{name: "status unknown", method: "POST", path: "/tasks/nope/status", body: `{"status": "completed"}`, status: 404, code: errs.NotFound},
		{name: "deadline unknown", method: "POST", path: "/tasks/nope/deadline", body: `{"deadline_seconds": 60}`, status: 404, code: errs.NotFound},

		// Bodies of the other task routes.
		{name: "assign missing", method: "POST", path: "/tasks/t-1/assign", body: `{}`, status: 400, code: errs.Invalid, field: "assignee"},
		{name: "assign empty body", method: "POST", path: "/tasks/t-1/assign", status: 400, code: errs.Invalid, message: "empty"},
		{name: "assign blank", method: "POST", path: "/tasks/t-1/assign", body: `{"assignee": " "}`, status: 400, code: errs.Invalid, field: "assignee"},
		{name: "assign too long", method: "POST", path: "/tasks/t-1/assign", body: fmt.Sprintf(`{"assignee": %q}`, long(task.MaxAssigneeLen+1)), status: 400, code: errs.Invalid, field: "assignee"},
		{name: "assign unknown field", method: "POST", path: "/tasks/t-1/assign", body: `{"assignee": "bob", "force": true}`, status: 400, code: errs.Invalid, field: "force"},
		{name: "assign malformed", method: "POST", path: "/tasks/t-1/assign", body: `{"assignee" "bob"}`, status: 400, code: errs.Invalid, message: "byte offset"},
		{name: "unassign unknown field", method: "POST", path: "/tasks/t-1/unassign", body: `{"who": "bob"}`, status: 400, code: errs.Invalid, field: "who"},
		{name: "unassign trailing", method: "POST", path: "/tasks/t-1/unassign", body: `{} {}`, status: 400, code: errs.Invalid},
		{name: "unassign too long", method: "POST", path: "/tasks/t-1/unassign", body: fmt.Sprintf(`{"assignee": %q}`, long(task.MaxAssigneeLen+1)), status: 400, code: errs.Invalid, field: "assignee"},
		{name: "unassign wrong type", method: "POST", path: "/tasks/t-1/unassign", contentType: "text/plain", body: `{}`, status: 415, code: kindUnsupportedMediaType},
		{name: "status unknown value", method: "POST", path: "/tasks/t-1/status", body: `{"status": "done"}`, status: 400, code: errs.Invalid, field: "status"},
		{name: "status missing", method: "POST", path: "/tasks/t-1/status", body: `{}`, status: 400, code: errs.Invalid, field: "status"},
		{name: "status number", method: "POST", path: "/tasks/t-1/status", body: `{"status": 3}`, status: 400, code: errs.Invalid, field: "status"},
		{name: "status trailing", method: "POST", path: "/tasks/t-1/status", body: `{"status": "completed"},`, status: 400, code: errs.Invalid},
		{name: "status oversize", method: "POST", path: "/tasks/t-1/status", body: `{"status": "completed"}` + strings.Repeat(" ", DefaultMaxBodyBytes), status: 413, code: errs.TooLarge},
		{name: "deadline missing", method: "POST", path: "/tasks/t-1/deadline", body: `{}`, status: 400, code: errs.Invalid, field: "deadline_seconds"},
		{name: "deadline null", method: "POST", path: "/tasks/t-1/deadline", body: `{"deadline_seconds": null}`, status: 400, code: errs.Invalid, field: "deadline_seconds"},
		{name: "deadline zero (set)", method: "POST", path: "/tasks/t-1/deadline", body: `{"deadline_seconds": 0}`, status: 400, code: errs.Invalid, field: "deadline_seconds"},
		{name: "deadline as date", method: "POST", path: "/tasks/t-1/deadline", body: `{"deadline_seconds": "2030-01-01T00:00:00Z"}`, status: 400, code: errs.Invalid, field: "deadline_seconds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, last := a.getTask("t-1"), a.lastEventID()
			r := a.do(c.method, c.path, c.body, contentType(c.contentType)...)
			e := wantError(t, r, c.status, c.code, c.field)
			if !strings.Contains(e.Message, c.message) {
				t.Errorf("message %q does not contain %q", e.Message, c.message)
			}
			if diff := cmp.Diff(before, a.getTask("t-1")); diff != "" {
				t.Errorf("task changed by a refused request (-before +after):\n%s", diff)
			}
			wantError(t, a.do("GET", "/tasks/t-new", ""), http.StatusNotFound, errs.NotFound, "")
			a.wantNoEvents(t, last)
		})
	}
}

// TestBodyLimit checks the limit at its edge and for bodies of unknown length,
// which only http.MaxBytesReader can stop.
func TestBodyLimit(t *testing.T) {
	const limit = 200
	a := newTestAPI(t, func(c *Config) { c.MaxBodyBytes = limit })
	pad := func(n int) string {
		b := `{"task_id": "t-1", "title": "x", "description": ""}`
		return b[:len(b)-2] + strings.Repeat("d", n-len(b)) + `"}`
	}
	if got := len(pad(limit)); got != limit {
		t.Fatalf("body is %d bytes, want %d", got, limit)
	}
	wantError(t, a.do("POST", "/tasks", pad(limit+1)), http.StatusRequestEntityTooLarge, errs.TooLarge, "")

	// Unknown length: the client streams the body chunked.
	req, err := http.NewRequest("POST", a.srv.URL+"/tasks", struct{ *strings.Reader }{strings.NewReader(pad(limit + 1))})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	r := a.send(req)
	wantError(t, r, http.StatusRequestEntityTooLarge, errs.TooLarge, "")
	wantError(t, a.do("GET", "/tasks/t-1", ""), http.StatusNotFound, errs.NotFound, "")
	a.wantNoEvents(t, 0)

	decode[task.Task](t, a.do("POST", "/tasks", pad(limit)), http.StatusCreated)
}
