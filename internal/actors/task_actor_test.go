package actors_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/event"
	"github.com/taskagent/taskagent/internal/task"
)

const taskID = "task-001"

var spec = task.Spec{Title: "Review PR #42", Description: "Review the authentication refactoring pull request"}

func newTaskHost(t *testing.T) (*host, actors.Tasks) {
	t.Helper()
	h := newHost(t, actors.TaskActor())
	return h, actors.Tasks{Invoker: h}
}

// mustCreate creates the task and clears nothing: the task.created event stays.
func mustCreate(t *testing.T, c actors.Tasks, s task.Spec) task.Task {
	t.Helper()
	res, err := c.Create(context.Background(), taskID, s)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return res.Task
}

func wantKind(t *testing.T, err error, want errs.Kind) {
	t.Helper()
	if got := errs.KindOf(err); got != want {
		t.Fatalf("got error %v (kind %q), want kind %q", err, got, want)
	}
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	wantKind(t, err, errs.Invalid)
	var e *errs.Error
	if !errors.As(err, &e) || e.Field != field {
		t.Fatalf("got error %v, want one about field %q", err, field)
	}
}

func wantEvents(t *testing.T, h *host, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if diff := cmp.Diff(want, h.eventTypes()); diff != "" {
		t.Fatalf("published event types (-want +got):\n%s", diff)
	}
}

// taskEvent decodes the i-th published event as a task event.
func taskEvent(t *testing.T, h *host, i int) actors.TaskEvent {
	t.Helper()
	events := h.published()
	if i >= len(events) {
		t.Fatalf("got %d events, want at least %d", len(events), i+1)
	}
	e := events[i]
	if e.Topic != event.TopicTasks {
		t.Errorf("event %d topic = %q, want %q", i, e.Topic, event.TopicTasks)
	}
	if want := actors.TaskActorType + "/" + taskID; e.Source != want {
		t.Errorf("event %d source = %q, want %q", i, e.Source, want)
	}
	var te actors.TaskEvent
	if err := json.Unmarshal(e.Data, &te); err != nil {
		t.Fatalf("decode event %d: %v", i, err)
	}
	if te.EventType != e.Type {
		t.Errorf("event %d: event_type %q in the data, %q on the envelope", i, te.EventType, e.Type)
	}
	return te
}

// storedTask decodes the task as stored under the state key "task".
func storedTask(t *testing.T, h *host) task.Task {
	t.Helper()
	b := h.state(actors.TaskActorType, taskID, "task")
	if b == nil {
		t.Fatal("no task stored")
	}
	var tk task.Task
	if err := json.Unmarshal(b, &tk); err != nil {
		t.Fatalf("decode stored task: %v", err)
	}
	return tk
}

func deadlineData(t *testing.T, data []byte) time.Time {
	t.Helper()
	var d struct {
		Deadline string `json:"deadline"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("decode reminder data %s: %v", data, err)
	}
	got, err := time.Parse(time.RFC3339Nano, d.Deadline)
	if err != nil {
		t.Fatalf("reminder deadline %q is not RFC 3339: %v", d.Deadline, err)
	}
	return got
}

func wantReminders(t *testing.T, h *host, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if diff := cmp.Diff(want, h.reminderNames(actors.TaskActorType, taskID)); diff != "" {
		t.Fatalf("reminders (-want +got):\n%s", diff)
	}
}

func TestCreateTask(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	now := h.clock()

	res, err := c.Create(ctx, taskID, spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	want := task.Task{ID: taskID, Title: spec.Title, Description: spec.Description, Status: task.Pending, CreatedAt: now, UpdatedAt: now}
	if diff := cmp.Diff(actors.CreateResult{Task: want, Created: true}, res); diff != "" {
		t.Errorf("Create (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, storedTask(t, h)); diff != "" {
		t.Errorf("stored task (-want +got):\n%s", diff)
	}
	got, err := c.Get(ctx, taskID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get (-want +got):\n%s", diff)
	}
	wantEvents(t, h, actors.EventTaskCreated)
	wantReminders(t, h)
	if e := taskEvent(t, h, 0); e.TaskID != taskID || !cmp.Equal(e.Task, want) || e.PreviousStatus != "" || !e.Timestamp.Equal(now) {
		t.Errorf("task.created event = %+v, want the new task, no previous status, timestamp %v", e, now)
	}
}

func TestCreateTaskIsIdempotent(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	first := mustCreate(t, c, spec)
	h.advance(time.Minute)

	// An activity retried, even with an assignee it did not have at first.
	again := spec
	again.Assignee = "alice"
	res, err := c.Create(ctx, taskID, again)
	if err != nil {
		t.Fatalf("Create again: %v", err)
	}
	if diff := cmp.Diff(actors.CreateResult{Task: first, Created: false}, res); diff != "" {
		t.Errorf("Create again (-want +got):\n%s", diff)
	}
	wantEvents(t, h, actors.EventTaskCreated)
}

func TestCreateTaskConflict(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	first := mustCreate(t, c, spec)
	stored := h.state(actors.TaskActorType, taskID, "task")

	for _, s := range []task.Spec{
		{Title: spec.Title, Description: "something else"},
		{Title: "Another title", Description: spec.Description},
	} {
		_, err := c.Create(ctx, taskID, s)
		wantKind(t, err, errs.Conflict)
	}
	if !bytes.Equal(stored, h.state(actors.TaskActorType, taskID, "task")) {
		t.Error("a conflicting create changed the stored task")
	}
	if got, _ := c.Get(ctx, taskID); !cmp.Equal(got, first) {
		t.Errorf("Get = %+v, want %+v", got, first)
	}
	wantEvents(t, h, actors.EventTaskCreated)
}

func TestCreateTaskWithAssigneeAndDeadline(t *testing.T) {
	h, c := newTaskHost(t)
	deadline := h.clock().Add(time.Hour).In(time.FixedZone("CET", 3600))
	s := spec
	s.Assignee = "alice@example.com"
	s.Deadline = &deadline

	tk := mustCreate(t, c, s)
	if tk.Status != task.Assigned || tk.Assignee != s.Assignee {
		t.Errorf("got status %s, assignee %q; want assigned to %q", tk.Status, tk.Assignee, s.Assignee)
	}
	if tk.Deadline == nil || !tk.Deadline.Equal(deadline) {
		t.Fatalf("got deadline %v, want %v", tk.Deadline, deadline)
	}
	// Creating publishes task.created and nothing else, whatever the spec holds.
	wantEvents(t, h, actors.EventTaskCreated)
	wantReminders(t, h, actors.ReminderDeadline)
	r, _ := h.reminder(actors.TaskActorType, taskID, actors.ReminderDeadline)
	if !r.Due.Equal(deadline) || r.Period != 0 {
		t.Errorf("reminder due %v period %v, want due %v, one-shot", r.Due, r.Period, deadline)
	}
	if got := deadlineData(t, r.Data); !got.Equal(deadline) {
		t.Errorf("reminder data deadline = %v, want %v", got, deadline)
	}
}

func TestCreateTaskRetryHealsLostReminder(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	deadline := h.clock().Add(time.Hour)
	s := spec
	s.Deadline = &deadline
	mustCreate(t, c, s)
	h.dropReminder(actors.TaskActorType, taskID, actors.ReminderDeadline)

	if _, err := c.Create(ctx, taskID, s); err != nil {
		t.Fatalf("Create again: %v", err)
	}
	wantReminders(t, h, actors.ReminderDeadline)
	wantEvents(t, h, actors.EventTaskCreated)
}

func TestCreateTaskInvalid(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	far := h.clock().Add(task.MaxDeadline + time.Second)
	tests := []struct {
		name  string
		spec  task.Spec
		field string
	}{
		{"no title", task.Spec{Description: "x"}, "title"},
		{"title with control character", task.Spec{Title: "a\x1b"}, "title"},
		{"blank assignee", task.Spec{Title: "x", Assignee: " "}, "assignee"},
		{"deadline too far", task.Spec{Title: "x", Deadline: &far}, "deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Create(ctx, taskID, tt.spec)
			wantField(t, err, tt.field)
		})
	}
	if b := h.state(actors.TaskActorType, taskID, "task"); b != nil {
		t.Errorf("an invalid create stored %s", b)
	}
	wantEvents(t, h)
	wantReminders(t, h)
}

func TestCreateTaskChecksActorID(t *testing.T) {
	// Straight to the runtime, past the client's own check.
	h, _ := newTaskHost(t)
	in, _ := json.Marshal(spec)
	_, err := h.Invoke(context.Background(), actors.TaskActorType, "../etc/passwd", actors.MethodCreateTask, in)
	wantField(t, err, "task_id")
	wantEvents(t, h)
}

func TestTaskMethodInputNotJSON(t *testing.T) {
	h, c := newTaskHost(t)
	mustCreate(t, c, spec)
	_, err := h.Invoke(context.Background(), actors.TaskActorType, taskID, actors.MethodAssignTask, []byte(`{"assignee":`))
	wantKind(t, err, errs.Invalid)
}

func TestMissingTask(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	future := h.clock().Add(time.Hour)
	calls := map[string]func() error{
		"Get":          func() error { _, err := c.Get(ctx, taskID); return err },
		"UpdateStatus": func() error { _, err := c.UpdateStatus(ctx, taskID, task.Completed); return err },
		"Assign":       func() error { _, err := c.Assign(ctx, taskID, "alice"); return err },
		"Unassign":     func() error { _, err := c.Unassign(ctx, taskID, ""); return err },
		"SetDeadline":  func() error { _, err := c.SetDeadline(ctx, taskID, future); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			wantKind(t, call(), errs.NotFound)
		})
	}
	if b := h.state(actors.TaskActorType, taskID, "task"); b != nil {
		t.Errorf("a call on a missing task stored %s", b)
	}
	wantEvents(t, h)
	wantReminders(t, h)
}

func TestUpdateStatus(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	mustCreate(t, c, spec)
	h.advance(time.Minute)

	tk, err := c.UpdateStatus(ctx, taskID, task.InProgress)
	if err != nil {
		t.Fatalf("UpdateStatus: %v", err)
	}
	if tk.Status != task.InProgress || !tk.UpdatedAt.Equal(h.clock()) {
		t.Errorf("got status %s updated %v, want in_progress updated %v", tk.Status, tk.UpdatedAt, h.clock())
	}
	e := taskEvent(t, h, 1)
	if e.EventType != actors.EventTaskStatusChanged || e.PreviousStatus != task.Pending || e.Task.Status != task.InProgress {
		t.Errorf("event = %+v, want task.status_changed from pending to in_progress", e)
	}

	// Again: a no-op without an event.
	h.advance(time.Minute)
	again, err := c.UpdateStatus(ctx, taskID, task.InProgress)
	if err != nil {
		t.Fatalf("UpdateStatus again: %v", err)
	}
	if !cmp.Equal(again, tk) {
		t.Errorf("UpdateStatus again = %+v, want the task unchanged: %+v", again, tk)
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskStatusChanged)
}

func TestUpdateStatusRefused(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		to   task.Status
		kind errs.Kind
	}{
		{"to assigned", task.Assigned, errs.Conflict},
		{"to overdue", task.Overdue, errs.Conflict},
		{"back to pending", task.Pending, errs.Conflict},
		{"unknown status", "done", errs.Invalid},
		{"empty status", "", errs.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c := newTaskHost(t)
			mustCreate(t, c, spec)
			if _, err := c.UpdateStatus(ctx, taskID, task.InProgress); err != nil {
				t.Fatalf("UpdateStatus: %v", err)
			}
			stored := h.state(actors.TaskActorType, taskID, "task")
			_, err := c.UpdateStatus(ctx, taskID, tt.to)
			wantKind(t, err, tt.kind)
			if tt.kind == errs.Invalid {
				wantField(t, err, "status")
			}
			if !bytes.Equal(stored, h.state(actors.TaskActorType, taskID, "task")) {
				t.Error("a refused status change changed the stored task")
			}
			wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskStatusChanged)
		})
	}
}

func TestTerminalStatusDeletesDeadlineReminder(t *testing.T) {
	for _, to := range []task.Status{task.Completed, task.Cancelled} {
		t.Run(string(to), func(t *testing.T) {
			ctx := context.Background()
			h, c := newTaskHost(t)
			deadline := h.clock().Add(time.Hour)
			s := spec
			s.Deadline = &deadline
			mustCreate(t, c, s)
			wantReminders(t, h, actors.ReminderDeadline)

			if _, err := c.UpdateStatus(ctx, taskID, to); err != nil {
				t.Fatalf("UpdateStatus: %v", err)
			}
			wantReminders(t, h)
			// Nothing moves a finished task.
			_, err := c.UpdateStatus(ctx, taskID, task.InProgress)
			wantKind(t, err, errs.Conflict)
			_, err = c.Assign(ctx, taskID, "bob")
			wantKind(t, err, errs.Conflict)
			_, err = c.SetDeadline(ctx, taskID, deadline.Add(time.Hour))
			wantKind(t, err, errs.Conflict)
			// Except a retry of the deadline it has, which must not re-arm it.
			if _, err := c.SetDeadline(ctx, taskID, deadline); err != nil {
				t.Errorf("SetDeadline of the same deadline = %v, want nil", err)
			}
			wantReminders(t, h)
		})
	}
}

func TestAssignTask(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	mustCreate(t, c, spec)

	for range 2 {
		tk, err := c.Assign(ctx, taskID, "alice")
		if err != nil {
			t.Fatalf("Assign: %v", err)
		}
		if tk.Status != task.Assigned || tk.Assignee != "alice" {
			t.Fatalf("got %s to %q, want assigned to alice", tk.Status, tk.Assignee)
		}
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskAssigned)
	if e := taskEvent(t, h, 1); e.PreviousStatus != task.Pending || e.Task.Assignee != "alice" {
		t.Errorf("task.assigned event = %+v, want previous status pending, assignee alice", e)
	}

	// Another assignee: a change, but no change of status.
	if _, err := c.Assign(ctx, taskID, "bob"); err != nil {
		t.Fatalf("Assign bob: %v", err)
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskAssigned, actors.EventTaskAssigned)
	if e := taskEvent(t, h, 2); e.PreviousStatus != "" || e.Task.Assignee != "bob" {
		t.Errorf("second task.assigned event = %+v, want no previous status, assignee bob", e)
	}

	for _, bad := range []string{"", "  ", "bo\x00b"} {
		_, err := c.Assign(ctx, taskID, bad)
		wantField(t, err, "assignee")
	}
	if got := storedTask(t, h); got.Assignee != "bob" {
		t.Errorf("stored assignee = %q, want bob", got.Assignee)
	}
}

func TestUnassignTask(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	mustCreate(t, c, spec)
	if _, err := c.Assign(ctx, taskID, "alice"); err != nil {
		t.Fatalf("Assign: %v", err)
	}

	for range 2 {
		tk, err := c.Unassign(ctx, taskID, "")
		if err != nil {
			t.Fatalf("Unassign: %v", err)
		}
		if tk.Status != task.Pending || tk.Assignee != "" {
			t.Fatalf("got %s to %q, want pending and unassigned", tk.Status, tk.Assignee)
		}
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskAssigned, actors.EventTaskUnassigned)
	if e := taskEvent(t, h, 2); e.PreviousStatus != task.Assigned || e.Task.Status != task.Pending {
		t.Errorf("task.unassigned event = %+v, want previous status assigned, now pending", e)
	}
}

func TestUnassignOnlyOwnAssignment(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	mustCreate(t, c, spec)
	if _, err := c.Assign(ctx, taskID, "alice"); err != nil {
		t.Fatalf("Assign alice: %v", err)
	}
	if _, err := c.Assign(ctx, taskID, "bob"); err != nil {
		t.Fatalf("Assign bob: %v", err)
	}

	// A compensation for alice's assignment runs after bob was assigned.
	tk, err := c.Unassign(ctx, taskID, "alice")
	if err != nil {
		t.Fatalf("Unassign alice: %v", err)
	}
	if tk.Assignee != "bob" || tk.Status != task.Assigned {
		t.Errorf("got %s to %q, want still assigned to bob", tk.Status, tk.Assignee)
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskAssigned, actors.EventTaskAssigned)

	tk, err = c.Unassign(ctx, taskID, "bob")
	if err != nil {
		t.Fatalf("Unassign bob: %v", err)
	}
	if tk.Assignee != "" || tk.Status != task.Pending {
		t.Errorf("got %s to %q, want pending and unassigned", tk.Status, tk.Assignee)
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskAssigned, actors.EventTaskAssigned, actors.EventTaskUnassigned)
}

func TestSetDeadline(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	mustCreate(t, c, spec)
	deadline := h.clock().Add(30 * time.Second).In(time.FixedZone("EST", -5*3600))

	tk, err := c.SetDeadline(ctx, taskID, deadline)
	if err != nil {
		t.Fatalf("SetDeadline: %v", err)
	}
	if tk.Deadline == nil || !tk.Deadline.Equal(deadline) || tk.Deadline.Location() != time.UTC {
		t.Fatalf("got deadline %v, want %v in UTC", tk.Deadline, deadline)
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskDeadlineSet)
	if e := taskEvent(t, h, 1); e.PreviousStatus != "" || e.Task.Deadline == nil || !e.Task.Deadline.Equal(deadline) {
		t.Errorf("task.deadline_set event = %+v, want the deadline and no previous status", e)
	}
	r, ok := h.reminder(actors.TaskActorType, taskID, actors.ReminderDeadline)
	if !ok {
		t.Fatal("no deadline reminder")
	}
	if !r.Due.Equal(deadline) || r.Period != 0 {
		t.Errorf("reminder due %v period %v, want due %v, one-shot", r.Due, r.Period, deadline)
	}
	if got := deadlineData(t, r.Data); !got.Equal(deadline) {
		t.Errorf("reminder data deadline = %v, want %v", got, deadline)
	}

	// A retry, after the first attempt lost its reminder: no event, reminder back.
	h.dropReminder(actors.TaskActorType, taskID, actors.ReminderDeadline)
	again, err := c.SetDeadline(ctx, taskID, deadline)
	if err != nil {
		t.Fatalf("SetDeadline again: %v", err)
	}
	if !cmp.Equal(again, tk) {
		t.Errorf("SetDeadline again = %+v, want the task unchanged: %+v", again, tk)
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskDeadlineSet)
	wantReminders(t, h, actors.ReminderDeadline)

	// A retry that comes after the deadline has passed still succeeds.
	h.advance(time.Minute)
	if _, err := c.SetDeadline(ctx, taskID, deadline); err != nil {
		t.Fatalf("SetDeadline after the deadline: %v", err)
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskDeadlineSet)
}

func TestSetDeadlineInvalid(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	mustCreate(t, c, spec)
	now := h.clock()
	for name, d := range map[string]time.Time{
		"zero":     {},
		"too far":  now.Add(task.MaxDeadline + time.Second),
		"year one": time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.SetDeadline(ctx, taskID, d)
			wantField(t, err, "deadline")
		})
	}
	if tk := storedTask(t, h); tk.Deadline != nil {
		t.Errorf("stored deadline = %v, want none", tk.Deadline)
	}
	wantEvents(t, h, actors.EventTaskCreated)
	wantReminders(t, h)
}

func TestDeadlineReminderMarksOverdue(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	mustCreate(t, c, spec)
	if _, err := c.Assign(ctx, taskID, "alice"); err != nil {
		t.Fatalf("Assign: %v", err)
	}
	deadline := h.clock().Add(30 * time.Second)
	if _, err := c.SetDeadline(ctx, taskID, deadline); err != nil {
		t.Fatalf("SetDeadline: %v", err)
	}
	r, _ := h.reminder(actors.TaskActorType, taskID, actors.ReminderDeadline)

	h.advance(31 * time.Second)
	if err := h.fire(t, actors.TaskActorType, taskID, actors.ReminderDeadline); err != nil {
		t.Fatalf("fire: %v", err)
	}
	tk, err := c.Get(ctx, taskID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if tk.Status != task.Overdue || !tk.UpdatedAt.Equal(h.clock()) {
		t.Errorf("got status %s updated %v, want overdue updated %v", tk.Status, tk.UpdatedAt, h.clock())
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskAssigned, actors.EventTaskDeadlineSet, actors.EventTaskOverdue)
	if e := taskEvent(t, h, 3); e.PreviousStatus != task.Assigned || e.Task.Status != task.Overdue || !e.Timestamp.Equal(h.clock()) {
		t.Errorf("task.overdue event = %+v, want from assigned to overdue at %v", e, h.clock())
	}
	wantReminders(t, h) // one-shot: gone after success

	// Delivered again (at least once): nothing more happens.
	if err := h.fireWith(t, actors.TaskActorType, taskID, actors.ReminderDeadline, r.Data); err != nil {
		t.Fatalf("fire again: %v", err)
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskAssigned, actors.EventTaskDeadlineSet, actors.EventTaskOverdue)

	// A new deadline in the future brings the task back, with a new reminder.
	h.advance(time.Minute)
	later := h.clock().Add(time.Hour)
	tk, err = c.SetDeadline(ctx, taskID, later)
	if err != nil {
		t.Fatalf("SetDeadline later: %v", err)
	}
	if tk.Status != task.Assigned {
		t.Errorf("got status %s, want assigned again", tk.Status)
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskAssigned, actors.EventTaskDeadlineSet, actors.EventTaskOverdue,
		actors.EventTaskDeadlineSet, actors.EventTaskStatusChanged)
	if e := taskEvent(t, h, 5); e.PreviousStatus != task.Overdue || e.Task.Status != task.Assigned {
		t.Errorf("task.status_changed event = %+v, want from overdue to assigned", e)
	}
	wantReminders(t, h, actors.ReminderDeadline)
}

func TestDeadlineReminderOnFinishedTask(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	deadline := h.clock().Add(time.Minute)
	s := spec
	s.Deadline = &deadline
	mustCreate(t, c, s)
	r, _ := h.reminder(actors.TaskActorType, taskID, actors.ReminderDeadline)
	if _, err := c.UpdateStatus(ctx, taskID, task.Completed); err != nil {
		t.Fatalf("UpdateStatus: %v", err)
	}
	stored := h.state(actors.TaskActorType, taskID, "task")

	// The runtime delivers the reminder it had already picked up.
	h.advance(2 * time.Minute)
	if err := h.fireWith(t, actors.TaskActorType, taskID, actors.ReminderDeadline, r.Data); err != nil {
		t.Fatalf("fire: %v", err)
	}
	if !bytes.Equal(stored, h.state(actors.TaskActorType, taskID, "task")) {
		t.Error("a deadline reminder changed a completed task")
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskStatusChanged)
}

func TestStaleDeadlineReminderIgnored(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	mustCreate(t, c, spec)
	first := h.clock().Add(time.Minute)
	if _, err := c.SetDeadline(ctx, taskID, first); err != nil {
		t.Fatalf("SetDeadline: %v", err)
	}
	stale, _ := h.reminder(actors.TaskActorType, taskID, actors.ReminderDeadline)
	moved := h.clock().Add(time.Hour)
	if _, err := c.SetDeadline(ctx, taskID, moved); err != nil {
		t.Fatalf("SetDeadline moved: %v", err)
	}
	r, _ := h.reminder(actors.TaskActorType, taskID, actors.ReminderDeadline)
	if !r.Due.Equal(moved) {
		t.Errorf("reminder due %v, want %v: moving the deadline replaces it", r.Due, moved)
	}

	h.advance(2 * time.Minute)
	if err := h.fireWith(t, actors.TaskActorType, taskID, actors.ReminderDeadline, stale.Data); err != nil {
		t.Fatalf("fire stale: %v", err)
	}
	if tk := storedTask(t, h); tk.Status != task.Pending {
		t.Errorf("got status %s after a stale reminder, want pending", tk.Status)
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskDeadlineSet, actors.EventTaskDeadlineSet)
}

func TestRemindEdgeCases(t *testing.T) {
	h, c := newTaskHost(t)

	// No task (never created, or gone): nothing to do, and no error to retry.
	if err := h.fireWith(t, actors.TaskActorType, taskID, actors.ReminderDeadline, []byte(`{"deadline":"2025-03-01T12:00:00Z"}`)); err != nil {
		t.Errorf("reminder on a missing task = %v, want nil", err)
	}

	deadline := h.clock().Add(time.Minute)
	s := spec
	s.Deadline = &deadline
	mustCreate(t, c, s)
	h.advance(2 * time.Minute)

	// Unknown names are dropped.
	if err := h.fireWith(t, actors.TaskActorType, taskID, "something-else", nil); err != nil {
		t.Errorf("unknown reminder = %v, want nil", err)
	}
	if tk := storedTask(t, h); tk.Status != task.Pending {
		t.Errorf("got status %s after an unknown reminder, want pending", tk.Status)
	}

	// Unreadable data falls back on the task's own deadline, which has come.
	if err := h.fireWith(t, actors.TaskActorType, taskID, actors.ReminderDeadline, []byte(`not json`)); err != nil {
		t.Fatalf("reminder with bad data = %v, want nil", err)
	}
	if tk := storedTask(t, h); tk.Status != task.Overdue {
		t.Errorf("got status %s, want overdue", tk.Status)
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskOverdue)
}

func TestRemindBadDataBeforeDeadline(t *testing.T) {
	h, c := newTaskHost(t)
	deadline := h.clock().Add(time.Hour)
	s := spec
	s.Deadline = &deadline
	mustCreate(t, c, s)
	if err := h.fireWith(t, actors.TaskActorType, taskID, actors.ReminderDeadline, []byte(`{}`)); err != nil {
		t.Fatalf("reminder with empty data = %v, want nil", err)
	}
	if tk := storedTask(t, h); tk.Status != task.Pending {
		t.Errorf("got status %s before the deadline, want pending", tk.Status)
	}
	wantEvents(t, h, actors.EventTaskCreated)
}

func TestTaskEventShape(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	mustCreate(t, c, spec)
	if _, err := c.Assign(ctx, taskID, "alice"); err != nil {
		t.Fatalf("Assign: %v", err)
	}
	events := h.published()
	for i, wantPrev := range []any{nil, "pending"} {
		var m map[string]any
		if err := json.Unmarshal(events[i].Data, &m); err != nil {
			t.Fatalf("decode event %d: %v", i, err)
		}
		if m["event_type"] != events[i].Type || m["task_id"] != taskID {
			t.Errorf("event %d: event_type %v task_id %v, want %s and %s", i, m["event_type"], m["task_id"], events[i].Type, taskID)
		}
		if m["previous_status"] != wantPrev {
			t.Errorf("event %d: previous_status %v, want %v", i, m["previous_status"], wantPrev)
		}
		if tk, ok := m["task"].(map[string]any); !ok || tk["task_id"] != taskID || tk["title"] != spec.Title {
			t.Errorf("event %d: task %v, want the task object", i, m["task"])
		}
		ts, _ := m["timestamp"].(string)
		parsed, err := time.Parse(time.RFC3339, ts)
		if err != nil || parsed.Location() != time.UTC || !parsed.Equal(h.clock()) {
			t.Errorf("event %d: timestamp %q, want %s in RFC 3339 UTC", i, ts, h.clock().Format(time.RFC3339))
		}
	}
}

func TestTasksClientChecksIDs(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	for _, id := range []string{"", "a/b", "-x", "x y"} {
		calls := map[string]func() error{
			"Create":       func() error { _, err := c.Create(ctx, id, spec); return err },
			"Get":          func() error { _, err := c.Get(ctx, id); return err },
			"UpdateStatus": func() error { _, err := c.UpdateStatus(ctx, id, task.Completed); return err },
			"Assign":       func() error { _, err := c.Assign(ctx, id, "alice"); return err },
			"Unassign":     func() error { _, err := c.Unassign(ctx, id, ""); return err },
			"SetDeadline":  func() error { _, err := c.SetDeadline(ctx, id, h.clock().Add(time.Hour)); return err },
		}
		for name, call := range calls {
			wantField(t, call(), "task_id")
			if n := h.turnCount(); n != 0 {
				t.Fatalf("%s(%q) reached the runtime: %d turns", name, id, n)
			}
		}
	}
}

func TestConcurrentTaskCalls(t *testing.T) {
	// Turns run one at a time, so each assignee change is seen whole: every
	// successful Assign of a new assignee publishes exactly one event.
	ctx := context.Background()
	h, c := newTaskHost(t)
	mustCreate(t, c, spec)
	assignees := []string{"a", "b", "c", "d"}
	errc := make(chan error)
	for i := range 40 {
		go func() {
			_, err := c.Assign(ctx, taskID, assignees[i%len(assignees)])
			errc <- err
		}()
	}
	for range 40 {
		if err := <-errc; err != nil {
			t.Fatalf("Assign: %v", err)
		}
	}
	events := h.published()
	prev := ""
	for _, e := range events[1:] {
		te := taskEvent(t, h, int(e.ID-1))
		if te.Task.Assignee == prev {
			t.Fatalf("event %d assigns %q again: lost update", e.ID, prev)
		}
		prev = te.Task.Assignee
	}
	if got := storedTask(t, h).Assignee; got != prev {
		t.Errorf("stored assignee %q, want the last event's %q", got, prev)
	}
}

func TestFailedTurnChangesNothing(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	deadline := h.clock().Add(time.Hour)
	s := spec
	s.Deadline = &deadline
	broken := errors.New("broker down")

	// The create stores the task and registers the reminder before it publishes;
	// when the publish fails, neither may remain.
	h.setPublishErr(broken)
	if _, err := c.Create(ctx, taskID, s); !errors.Is(err, broken) {
		t.Fatalf("Create with the broker down = %v, want %v", err, broken)
	}
	if b := h.state(actors.TaskActorType, taskID, "task"); b != nil {
		t.Errorf("a failed create stored %s", b)
	}
	wantReminders(t, h)

	// The retry creates the task once, as if the first attempt never ran.
	h.setPublishErr(nil)
	res, err := c.Create(ctx, taskID, s)
	if err != nil || !res.Created {
		t.Fatalf("Create retried = %+v, %v; want created", res, err)
	}
	wantReminders(t, h, actors.ReminderDeadline)

	h.setPublishErr(broken)
	for name, call := range map[string]func() error{
		"UpdateStatus": func() error { _, err := c.UpdateStatus(ctx, taskID, task.Completed); return err },
		"Assign":       func() error { _, err := c.Assign(ctx, taskID, "alice"); return err },
		"SetDeadline":  func() error { _, err := c.SetDeadline(ctx, taskID, deadline.Add(time.Hour)); return err },
	} {
		if err := call(); !errors.Is(err, broken) {
			t.Errorf("%s with the broker down = %v, want %v", name, err, broken)
		}
	}
	h.advance(2 * time.Hour)
	if err := h.fire(t, actors.TaskActorType, taskID, actors.ReminderDeadline); !errors.Is(err, broken) {
		t.Errorf("reminder with the broker down = %v, want %v", err, broken)
	}
	if diff := cmp.Diff(res.Task, storedTask(t, h)); diff != "" {
		t.Errorf("stored task after failed turns (-want +got):\n%s", diff)
	}
	// A failed callback leaves the reminder to be retried; then it works.
	wantReminders(t, h, actors.ReminderDeadline)
	h.setPublishErr(nil)
	if err := h.fire(t, actors.TaskActorType, taskID, actors.ReminderDeadline); err != nil {
		t.Fatalf("reminder retried: %v", err)
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskOverdue)
}

func TestDamagedTaskState(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	h.putState(actors.TaskActorType, taskID, "task", []byte(`{"status":`))
	_, err := c.Get(ctx, taskID)
	wantKind(t, err, errs.Internal)
	_, err = c.Create(ctx, taskID, spec)
	wantKind(t, err, errs.Internal)
	if err := h.fireWith(t, actors.TaskActorType, taskID, actors.ReminderDeadline, nil); err == nil {
		t.Error("reminder on damaged state = nil, want an error")
	}
}

// TestPastDeadlineMakesTaskOverdue: a deadline that has passed by the time it is
// set (a workflow that waited in a queue) is stored, and its reminder, due at
// once, makes the task overdue.
func TestPastDeadlineMakesTaskOverdue(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	mustCreate(t, c, spec)
	past := h.clock().Add(-time.Second)
	tk, err := c.SetDeadline(ctx, taskID, past)
	if err != nil {
		t.Fatalf("SetDeadline in the past: %v", err)
	}
	if tk.Deadline == nil || !tk.Deadline.Equal(past) || tk.Status != task.Pending {
		t.Fatalf("task = %+v", tk)
	}
	r, ok := h.reminder(actors.TaskActorType, taskID, actors.ReminderDeadline)
	if !ok || r.Due.After(h.clock()) {
		t.Fatalf("reminder = %+v, %v; want one due already", r, ok)
	}
	if err := h.fire(t, actors.TaskActorType, taskID, actors.ReminderDeadline); err != nil {
		t.Fatal(err)
	}
	if got := storedTask(t, h); got.Status != task.Overdue {
		t.Fatalf("status %s after the reminder, want overdue", got.Status)
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskDeadlineSet, actors.EventTaskOverdue)
}

// TestEarlyReminderIsRetried: a reminder that fires before the deadline (a
// runtime with coarse timers) fails so that it fires again, and changes nothing.
func TestEarlyReminderIsRetried(t *testing.T) {
	ctx := context.Background()
	h, c := newTaskHost(t)
	mustCreate(t, c, spec)
	if _, err := c.SetDeadline(ctx, taskID, h.clock().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := h.fire(t, actors.TaskActorType, taskID, actors.ReminderDeadline); errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("early reminder: %v, want an unavailable error so it is retried", err)
	}
	if got := storedTask(t, h); got.Status != task.Pending {
		t.Fatalf("status %s after an early reminder, want pending", got.Status)
	}
}
