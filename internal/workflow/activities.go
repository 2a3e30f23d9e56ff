package workflow

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/microsoft/durabletask-go/task"

	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/notify"
	tasks "github.com/taskagent/taskagent/internal/task"
)

// Tasks is what the activities need of TaskActors; actors.Tasks over any runtime's
// invoker provides it. Errors carry their errs kinds.
type Tasks interface {
	Create(ctx context.Context, id string, s tasks.Spec) (actors.CreateResult, error)
	Assign(ctx context.Context, id, assignee string) (tasks.Task, error)
	Unassign(ctx context.Context, id, only string) (tasks.Task, error)
	SetDeadline(ctx context.Context, id string, deadline time.Time) (tasks.Task, error)
	RecordNotification(ctx context.Context, id string, in actors.NotificationInput) (actors.NotificationResult, error)
}

// Activities are the workflow's steps. Each is idempotent, because an engine runs
// an activity at least once: creating, assigning, un-assigning and setting the same
// deadline again change nothing, and a notification carries an id that receivers
// and the task's record deduplicate on.
type Activities struct {
	Tasks    Tasks
	Notifier notify.Notifier
	Log      *slog.Logger
}

// Register adds the orchestrator and every activity to r.
func Register(r *task.TaskRegistry, a Activities, log *slog.Logger) error {
	if err := r.AddOrchestratorN(Name, Orchestrator(log)); err != nil {
		return err
	}
	for name, f := range map[string]task.Activity{
		ActivityValidate:    activity(a.validate),
		ActivityCreate:      activity(a.create),
		ActivityAssign:      activity(a.assign),
		ActivitySetDeadline: activity(a.setDeadline),
		ActivityNotify:      activity(a.notify),
		ActivityUnassign:    activity(a.unassign),
	} {
		if err := r.AddActivityN(name, f); err != nil {
			return err
		}
	}
	return nil
}

// activity adapts f to the engine: refusals (invalid input, not found, conflict)
// become an outcome the orchestrator does not retry; any other error fails the
// attempt.
func activity[In, Out any](f func(ctx context.Context, in In) (Out, error)) task.Activity {
	return func(actx task.ActivityContext) (any, error) {
		var in In
		if err := actx.GetInput(&in); err != nil {
			return outcome{Error: &errs.Error{Kind: errs.Invalid, Message: "unreadable activity input: " + err.Error()}}, nil
		}
		out, err := f(actx.Context(), in)
		if err != nil {
			switch errs.KindOf(err) {
			case errs.Invalid, errs.NotFound, errs.Conflict:
				return outcome{Error: errs.Public(err)}, nil
			}
			return nil, err
		}
		if _, none := any(out).(struct{}); none {
			return outcome{}, nil // nothing worth storing
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, err
		}
		return outcome{Value: b}, nil
	}
}

// Validation limits of the workflow, stricter than the API's.
const (
	MinTitleLen       = 5
	MinDescriptionLen = 10
)

// Validate applies the workflow's rules to a request and lists every problem.
func Validate(in Input) Validation {
	var issues []string
	if err := tasks.ValidateID("task_id", in.TaskID); err != nil {
		issues = append(issues, err.Error())
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(in.Title)); n < MinTitleLen {
		issues = append(issues, fmt.Sprintf("Title must be at least %d characters (got %d)", MinTitleLen, n))
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(in.Description)); n < MinDescriptionLen {
		issues = append(issues, fmt.Sprintf("Description must be at least %d characters (got %d)", MinDescriptionLen, n))
	}
	spec := tasks.Spec{Title: in.Title, Description: in.Description, Assignee: in.Assignee}
	if err := spec.Validate(); err != nil && !strings.Contains(err.Error(), "is required") {
		issues = append(issues, err.Error())
	}
	if strings.TrimSpace(in.Assignee) == "" {
		issues = append(issues, "Assignee is required")
	}
	if in.DeadlineSeconds != 0 {
		if err := tasks.ValidateDeadline(in.DeadlineSeconds); err != nil {
			issues = append(issues, err.Error())
		}
	}
	return Validation{Valid: len(issues) == 0, Issues: issues}
}

func (a Activities) validate(_ context.Context, in Input) (Validation, error) {
	v := Validate(in)
	a.Log.Info("activity validate_task", "task_id", in.TaskID, "valid", v.Valid)
	return v, nil
}

// The actor steps return nothing: the orchestrator needs only whether they
// succeeded, and every result is stored in the history and decoded again at each
// replay.

func (a Activities) create(ctx context.Context, in CreateInput) (struct{}, error) {
	res, err := a.Tasks.Create(ctx, in.TaskID, in.Spec)
	if err == nil {
		a.Log.Info("activity create_task", "task_id", in.TaskID, "created", res.Created)
	}
	return struct{}{}, err
}

func (a Activities) assign(ctx context.Context, in AssignInput) (struct{}, error) {
	_, err := a.Tasks.Assign(ctx, in.TaskID, in.Assignee)
	if err == nil {
		a.Log.Info("activity assign_task", "task_id", in.TaskID, "assignee", in.Assignee)
	}
	return struct{}{}, err
}

// unassign is the compensation of assign: it clears the assignee and returns the
// task to pending, but only if the assignee is still the one this workflow set.
func (a Activities) unassign(ctx context.Context, in AssignInput) (struct{}, error) {
	t, err := a.Tasks.Unassign(ctx, in.TaskID, in.Assignee)
	if err == nil {
		a.Log.Info("activity unassign_task (compensation)", "task_id", in.TaskID, "status", t.Status)
	}
	return struct{}{}, err
}

func (a Activities) setDeadline(ctx context.Context, in DeadlineInput) (struct{}, error) {
	_, err := a.Tasks.SetDeadline(ctx, in.TaskID, in.Deadline)
	if err == nil {
		a.Log.Info("activity set_deadline_reminder", "task_id", in.TaskID, "deadline", in.Deadline)
	}
	return struct{}{}, err
}

// NotifyResult is the notify step's output.
type NotifyResult struct {
	Notified bool   `json:"notified"`
	Notifier string `json:"notifier"`
}

// notify sends the notification, bounded by the attempt's timeout, then records it
// on the task (one task.notified event per workflow, however often this runs).
func (a Activities) notify(ctx context.Context, in NotifyInput) (NotifyResult, error) {
	if in.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(in.Timeout))
		defer cancel()
	}
	deadline := in.Deadline
	n := notify.Notification{ID: in.NotificationID, TaskID: in.TaskID, Title: in.Title, Assignee: in.Assignee, Deadline: &deadline, Attempt: in.Attempt}
	if err := a.Notifier.Notify(ctx, n); err != nil {
		a.Log.Warn("activity notify_assignee failed", "task_id", in.TaskID, "assignee", in.Assignee, "attempt", in.Attempt, "err", err)
		// An Invalid error (the receiver refused it for good) is not retried; the
		// workflow compensates at once.
		return NotifyResult{}, err
	}
	if _, err := a.Tasks.RecordNotification(ctx, in.TaskID, actors.NotificationInput{ID: in.NotificationID, Assignee: in.Assignee, Notifier: a.Notifier.Name()}); err != nil {
		return NotifyResult{}, fmt.Errorf("record notification: %w", err)
	}
	return NotifyResult{Notified: true, Notifier: a.Notifier.Name()}, nil
}
