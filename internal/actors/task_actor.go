package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/event"
	"github.com/taskagent/taskagent/internal/task"
)

// ReminderDeadline is the name of the one-shot reminder a TaskActor registers for
// its task's deadline. Its data is a JSON object {"deadline": <RFC 3339 time>}: the
// deadline it was set for, so that a reminder left over from a moved deadline is
// recognised and ignored.
const ReminderDeadline = "deadline"

// stateTask is the state key of a TaskActor's task. It is part of the stored data:
// renaming it loses every task.
const stateTask = "task"

type deadlineData struct {
	Deadline time.Time `json:"deadline"`
}

// TaskActor returns the actor type that owns one task per actor id. Every method is
// idempotent, because workflow activities run at least once: repeating a call with
// the same input leaves the task as it is and publishes nothing.
func TaskActor() actor.Type {
	return actor.Type{
		Name: TaskActorType,
		Methods: map[string]actor.Method{
			MethodCreateTask:         actor.Typed(createTask),
			MethodGetTask:            actor.Typed(getTask),
			MethodUpdateStatus:       actor.Typed(updateStatus),
			MethodAssignTask:         actor.Typed(assignTask),
			MethodUnassignTask:       actor.Typed(unassignTask),
			MethodSetDeadline:        actor.Typed(setDeadline),
			MethodRecordNotification: actor.Typed(recordNotification),
		},
		Remind: remindTask,
	}
}

// createTask creates the task, or returns the existing one when it was created
// before from the same title and description (a retried activity).
func createTask(ctx context.Context, t actor.Turn, s task.Spec) (CreateResult, error) {
	id := t.ActorID()
	if err := task.ValidateID("task_id", id); err != nil {
		return CreateResult{}, err
	}
	if err := s.Validate(); err != nil {
		return CreateResult{}, err
	}
	existing, found, err := loadTask(ctx, t)
	if err != nil {
		return CreateResult{}, err
	}
	if found {
		if !existing.SameSpec(s) {
			return CreateResult{}, errs.E(errs.Conflict, "task %s already exists with another title or description", id)
		}
		// The first attempt may have stored the task and lost its reminder (a
		// runtime that cannot commit both at once); arming it again heals that.
		if err := armDeadline(t, existing); err != nil {
			return CreateResult{}, err
		}
		return CreateResult{Task: existing}, nil
	}

	now := t.Now().UTC()
	// The deadline is checked only for a new task: a retry may come after the
	// deadline has passed and must still find the task it created.
	if s.Deadline != nil {
		if err := checkDeadline(*s.Deadline, now); err != nil {
			return CreateResult{}, err
		}
	}
	tk := task.New(id, s, now)
	if err := t.Set(stateTask, tk); err != nil {
		return CreateResult{}, err
	}
	if err := armDeadline(t, tk); err != nil {
		return CreateResult{}, err
	}
	if err := publishTask(t, EventTaskCreated, tk, tk); err != nil {
		return CreateResult{}, err
	}
	return CreateResult{Task: tk, Created: true}, nil
}

func getTask(ctx context.Context, t actor.Turn, _ struct{}) (task.Task, error) {
	tk, found, err := loadTask(ctx, t)
	if err != nil {
		return task.Task{}, err
	}
	if !found {
		return task.Task{}, notFound(t)
	}
	return tk, nil
}

func updateStatus(ctx context.Context, t actor.Turn, in StatusInput) (task.Task, error) {
	before, after, changed, err := modify(ctx, t, func(tk *task.Task, now time.Time) (bool, error) {
		return tk.SetStatus(in.Status, now)
	})
	if err != nil {
		return task.Task{}, err
	}
	// Done even when nothing changed, so that a retry removes a reminder that the
	// first attempt stored the status for but failed to delete.
	if after.Status.Terminal() {
		t.DeleteReminder(ReminderDeadline)
	}
	if !changed {
		return after, nil
	}
	return after, publishTask(t, EventTaskStatusChanged, before, after)
}

func assignTask(ctx context.Context, t actor.Turn, in AssignInput) (task.Task, error) {
	if err := task.ValidateAssignee(in.Assignee); err != nil {
		return task.Task{}, err
	}
	before, after, changed, err := modify(ctx, t, func(tk *task.Task, now time.Time) (bool, error) {
		return tk.Assign(in.Assignee, now)
	})
	if err != nil || !changed {
		return after, err
	}
	return after, publishTask(t, EventTaskAssigned, before, after)
}

func unassignTask(ctx context.Context, t actor.Turn, in UnassignInput) (task.Task, error) {
	before, after, changed, err := modify(ctx, t, func(tk *task.Task, now time.Time) (bool, error) {
		return tk.Unassign(in.Assignee, now)
	})
	if err != nil || !changed {
		return after, err
	}
	return after, publishTask(t, EventTaskUnassigned, before, after)
}

func setDeadline(ctx context.Context, t actor.Turn, in DeadlineInput) (task.Task, error) {
	if in.Deadline.IsZero() {
		return task.Task{}, errs.Field("deadline", "is required")
	}
	deadline := in.Deadline.UTC()
	before, after, changed, err := modify(ctx, t, func(tk *task.Task, now time.Time) (bool, error) {
		// The deadline the task already has is a retry: it succeeds even when
		// that deadline has passed or the task was finished since.
		if tk.Deadline != nil && tk.Deadline.Equal(deadline) {
			return false, nil
		}
		if err := checkDeadline(deadline, now); err != nil {
			return false, err
		}
		return tk.SetDeadline(deadline, now)
	})
	if err != nil {
		return task.Task{}, err
	}
	// Armed on a no-op too, so that a retry heals a first attempt that stored the
	// deadline but lost the reminder. Registering the same reminder is harmless.
	if err := armDeadline(t, after); err != nil {
		return task.Task{}, err
	}
	if !changed {
		return after, nil
	}
	if err := publishTask(t, EventTaskDeadlineSet, before, after); err != nil {
		return task.Task{}, err
	}
	if after.Status != before.Status {
		if err := publishTask(t, EventTaskStatusChanged, before, after); err != nil {
			return task.Task{}, err
		}
	}
	return after, nil
}

// remindTask handles the deadline reminder: the task becomes overdue unless it was
// finished, is overdue already, or its deadline moved since the reminder was set.
// Reminders of other names are dropped, since nothing registers them.
func remindTask(ctx context.Context, t actor.Turn, name string, data []byte) error {
	if name != ReminderDeadline {
		return nil
	}
	tk, found, err := loadTask(ctx, t)
	if err != nil || !found {
		// A task that is gone has no deadline to miss.
		return err
	}
	now := t.Now().UTC()
	var d deadlineData
	if err := json.Unmarshal(data, &d); err != nil || d.Deadline.IsZero() {
		// Only a bug or a hand-edited store gets here. An error would be retried
		// for ever, so act on the task's own deadline if it has come instead.
		if tk.Deadline == nil || now.Before(*tk.Deadline) {
			return nil
		}
		d.Deadline = *tk.Deadline
	}
	if now.Before(d.Deadline) {
		// A runtime whose timers are coarser than ours fired early: fail, so that
		// the reminder fires again.
		return errs.E(errs.Unavailable, "deadline reminder of task %s fired %v early", tk.ID, d.Deadline.Sub(now))
	}
	before := tk
	if !tk.MarkOverdue(d.Deadline, now) {
		return nil
	}
	if err := t.Set(stateTask, tk); err != nil {
		return err
	}
	return publishTask(t, EventTaskOverdue, before, tk)
}

// modify is one change to a stored task: it loads the task (errs.NotFound when
// there is none), lets f change it at the turn's time, and stores it when f reports
// a change. It returns the task before and after f.
func modify(ctx context.Context, t actor.Turn, f func(tk *task.Task, now time.Time) (changed bool, err error)) (before, after task.Task, changed bool, err error) {
	before, found, err := loadTask(ctx, t)
	if err != nil {
		return task.Task{}, task.Task{}, false, err
	}
	if !found {
		return task.Task{}, task.Task{}, false, notFound(t)
	}
	after = before
	// The task's deadline is a pointer; f must not write through to before's.
	if before.Deadline != nil {
		d := *before.Deadline
		after.Deadline = &d
	}
	changed, err = f(&after, t.Now().UTC())
	if err != nil {
		return task.Task{}, task.Task{}, false, err
	}
	if changed {
		if err := t.Set(stateTask, after); err != nil {
			return task.Task{}, task.Task{}, false, err
		}
	}
	return before, after, changed, nil
}

func loadTask(ctx context.Context, t actor.Turn) (task.Task, bool, error) {
	var tk task.Task
	found, err := t.Get(ctx, stateTask, &tk)
	if err != nil {
		return task.Task{}, false, fmt.Errorf("load task %s: %w", t.ActorID(), err)
	}
	return tk, found, nil
}

func notFound(t actor.Turn) error {
	return errs.E(errs.NotFound, "task %s does not exist", t.ActorID())
}

// checkDeadline checks a new deadline against the turn's clock. A deadline that
// has already passed is accepted: a workflow computes its task's deadline when it
// starts, and a busy system may reach the deadline step later than that; the
// reminder then fires at once and the task becomes overdue, which is what the
// deadline says.
func checkDeadline(d, now time.Time) error {
	if d.After(now.Add(task.MaxDeadline)) || d.Before(now.Add(-task.MaxDeadline)) {
		return errs.Field("deadline", "is more than %s away", task.MaxDeadline)
	}
	return nil
}

// armDeadline registers the deadline reminder for tk when it can still become
// overdue.
func armDeadline(t actor.Turn, tk task.Task) error {
	if tk.Deadline == nil || tk.Status.Terminal() || tk.Status == task.Overdue {
		return nil
	}
	data, err := json.Marshal(deadlineData{Deadline: *tk.Deadline})
	if err != nil {
		return fmt.Errorf("encode deadline reminder: %w", err)
	}
	t.SetReminder(ReminderDeadline, actor.Reminder{Due: *tk.Deadline, Data: data})
	return nil
}

// publishTask publishes a task event about the change from before to after.
func publishTask(t actor.Turn, eventType string, before, after task.Task) error {
	e := TaskEvent{
		EventType: eventType,
		TaskID:    after.ID,
		Task:      after,
		Timestamp: after.UpdatedAt,
	}
	if eventType != EventTaskCreated && before.Status != after.Status {
		e.PreviousStatus = before.Status
	}
	if err := t.Publish(event.TopicTasks, eventType, e); err != nil {
		return fmt.Errorf("publish %s: %w", eventType, err)
	}
	return nil
}
