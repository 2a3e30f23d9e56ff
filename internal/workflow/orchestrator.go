package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/microsoft/durabletask-go/task"

	"github.com/taskagent/taskagent/internal/errs"
)

// Activity names, as registered with the engine.
const (
	ActivityValidate    = "ValidateTask"
	ActivityCreate      = "CreateTask"
	ActivityAssign      = "AssignTask"
	ActivitySetDeadline = "SetDeadlineReminder"
	ActivityNotify      = "NotifyAssignee"
	ActivityUnassign    = "UnassignTask"
)

// Step names in the timeline.
const (
	stepValidate = "validate_task"
	stepCreate   = "create_task"
	stepAssign   = "assign_task"
	stepDeadline = "set_deadline_reminder"
	stepNotify   = "notify_assignee"
	stepUnassign = "unassign_task"
	stepBackoff  = "backoff"
)

// Orchestrator returns TaskProcessingWorkflow. log receives progress lines, which
// are skipped while the orchestrator replays its history.
func Orchestrator(log *slog.Logger) task.Orchestrator {
	inputs := newInputCache(inputCacheSize)
	return func(ctx *task.OrchestrationContext) (any, error) {
		r := &run{ctx: ctx, log: log, inputs: inputs}
		// The orchestrator returns only once the workflow has finished: while
		// it waits, the engine unwinds it at the step it waits on.
		res := r.process()
		inputs.forget(keyOf(string(ctx.ID), r.started))
		return res, nil
	}
}

// run is one execution of the orchestrator: it accumulates the timeline as it goes.
type run struct {
	ctx           *task.OrchestrationContext
	log           *slog.Logger
	inputs        *inputCache
	started       time.Time
	steps         []Step
	compensations []compensation
}

// input returns the workflow's input, decoded at the first turn this process
// ran and kept for the replays at the turns after it.
func (r *run) input() (Input, error) {
	k := keyOf(string(r.ctx.ID), r.started)
	if in, ok := r.inputs.get(k); ok {
		return in, nil
	}
	var in Input
	if err := r.ctx.GetInput(&in); err != nil {
		return in, err
	}
	r.inputs.put(k, in)
	return in, nil
}

// compensation undoes one step; registered before the step runs, because a step can
// take effect and still report an error.
type compensation struct {
	step, activity string
	input          any
}

// terminalError is a step's refusal (bad input, a conflict): retrying cannot help.
type terminalError struct{ e *errs.Error }

func (t *terminalError) Error() string { return t.e.Error() }

func (r *run) process() Result {
	r.started = r.ctx.CurrentTimeUtc
	started := r.started
	in, err := r.input()
	if err != nil {
		return r.result(in.TaskID, StatusRejected, "unreadable input: "+err.Error())
	}
	if in.DeadlineSeconds == 0 {
		in.DeadlineSeconds = DefaultDeadlineSeconds
	}
	notifyPolicy := DefaultNotifyPolicy()
	if in.Notify != nil {
		notifyPolicy = in.Notify.normalized()
	}
	r.info("workflow started", "task_id", in.TaskID, "assignee", in.Assignee)

	// 1. Validate. A rejected task is not created.
	var v Validation
	if err := r.call(stepValidate, ActivityValidate, KindActivity, in, &v, actorPolicy); err != nil {
		return r.stop(in, err)
	}
	if !v.Valid {
		res := r.result(in.TaskID, StatusRejected, "validation failed: "+strings.Join(v.Issues, "; "))
		res.Issues = v.Issues
		r.info("workflow rejected", "issues", v.Issues)
		return res
	}

	// 2. Create the task. Nothing to undo if a later step fails: the task stays,
	// pending and unassigned.
	spec := CreateInput{TaskID: in.TaskID}
	spec.Spec.Title, spec.Spec.Description = in.Title, in.Description
	if err := r.call(stepCreate, ActivityCreate, KindActivity, spec, nil, actorPolicy); err != nil {
		return r.stop(in, err)
	}

	// 3. Assign, with its undo registered first.
	assign := AssignInput{TaskID: in.TaskID, Assignee: in.Assignee}
	r.compensations = append(r.compensations, compensation{stepUnassign, ActivityUnassign, assign})
	if err := r.call(stepAssign, ActivityAssign, KindActivity, assign, nil, actorPolicy); err != nil {
		return r.stop(in, err)
	}

	// 4. The deadline is measured from the workflow's start, so that every replay
	// and every retry sets the same absolute time.
	deadline := started.Add(time.Duration(in.DeadlineSeconds) * time.Second).UTC()
	if err := r.call(stepDeadline, ActivitySetDeadline, KindActivity, DeadlineInput{TaskID: in.TaskID, Deadline: deadline}, nil, actorPolicy); err != nil {
		return r.stop(in, err)
	}

	// 5. Notify, retried with backoff on durable timers.
	notify := NotifyInput{
		// Unique to this run: a task processed again after its workflow was purged
		// is notified again, not deduplicated away. Deterministic across replays.
		NotificationID: fmt.Sprintf("%s@%d", r.ctx.ID, started.UnixNano()),
		TaskID:         in.TaskID,
		Title:          in.Title,
		Assignee:       in.Assignee,
		Deadline:       deadline,
		Timeout:        notifyPolicy.AttemptTimeout,
	}
	if err := r.call(stepNotify, ActivityNotify, KindActivity, notify, nil, notifyPolicy); err != nil {
		return r.stop(in, err)
	}
	r.info("workflow completed")
	return r.result(in.TaskID, StatusCompleted, fmt.Sprintf("Task assigned to %s with deadline reminder at %s", in.Assignee, deadline.Format(time.RFC3339)))
}

// stop ends the workflow after a step failed: a refusal before anything took effect
// rejects the task; anything else fails it, after undoing what was done.
func (r *run) stop(in Input, err error) Result {
	var te *terminalError
	if errors.As(err, &te) && len(r.compensations) == 0 {
		res := r.result(in.TaskID, StatusRejected, te.e.Error())
		res.Issues = []string{te.e.Error()}
		r.info("workflow rejected", "err", err)
		return res
	}
	comps := r.compensate()
	var done []string
	for _, c := range comps {
		if c.Status == "done" {
			done = append(done, c.Step)
		}
	}
	msg := "Processing failed: " + err.Error()
	if len(comps) > 0 {
		msg += "; compensation applied: " + strings.Join(done, ", ")
		if len(done) < len(comps) {
			msg += " (some compensations failed)"
		}
	}
	res := r.result(in.TaskID, StatusFailed, msg)
	res.Compensations = comps
	r.warn("workflow failed", "err", err, "compensations", len(comps))
	return res
}

// compensate runs the registered compensations, last first. Each is retried; one
// that still fails is recorded and the rest still run.
func (r *run) compensate() []Compensation {
	var out []Compensation
	for i := len(r.compensations) - 1; i >= 0; i-- {
		c := r.compensations[i]
		before := len(r.steps)
		err := r.call(c.step, c.activity, KindCompensation, c.input, nil, actorPolicy)
		attempts := 0
		for _, s := range r.steps[before:] {
			if s.Kind == KindCompensation {
				attempts++
			}
		}
		rec := Compensation{Step: c.step, Status: "done", Attempts: attempts}
		if err != nil {
			rec.Status, rec.Error = "failed", err.Error()
			r.warn("compensation failed", "step", c.step, "err", err)
		}
		out = append(out, rec)
	}
	return out
}

// outcome is what every activity returns: a refusal travels as data, so that the
// orchestrator can tell it from a failure (an activity error), which it retries.
type outcome struct {
	Value json.RawMessage `json:"value,omitempty"`
	Error *errs.Error     `json:"error,omitempty"`
}

// call runs activity as step under policy and decodes its value into out. It
// returns a *terminalError for a refusal, and an error after the last failed
// attempt.
func (r *run) call(step, activity, kind string, in, out any, p RetryPolicy) error {
	var last error
	for attempt := 1; attempt <= p.MaxAttempts; attempt++ {
		if attempt > 1 {
			wait := p.wait(attempt)
			start := r.ctx.CurrentTimeUtc
			if err := r.ctx.CreateTimer(wait).Await(nil); err != nil {
				return err
			}
			r.steps = append(r.steps, Step{Name: stepBackoff, Kind: KindTimer, Attempt: attempt - 1,
				Started: start, Finished: r.ctx.CurrentTimeUtc, Outcome: OutcomeOK})
		}
		if n, ok := in.(NotifyInput); ok {
			n.Attempt = attempt
			in = n
		}
		start := r.ctx.CurrentTimeUtc
		var o outcome
		var t task.Task
		if r.ctx.IsReplaying {
			// This call is already in the history: the engine matches it to
			// its TaskScheduled event by sequence number and never reads its
			// input, so replays skip encoding it.
			t = r.ctx.CallActivity(activity)
		} else {
			t = r.ctx.CallActivity(activity, task.WithActivityInput(in))
		}
		err := t.Await(&o)
		s := Step{Name: step, Kind: kind, Attempt: attempt, Started: start, Finished: r.ctx.CurrentTimeUtc}
		switch {
		case err != nil:
			s.Outcome, s.Error = OutcomeFailed, activityError(err)
			r.steps = append(r.steps, s)
			last = errors.New(s.Error)
			r.info("step failed", "step", step, "attempt", attempt, "err", s.Error)
		case o.Error != nil:
			s.Outcome, s.Error = OutcomeRejected, o.Error.Error()
			r.steps = append(r.steps, s)
			return &terminalError{o.Error}
		default:
			s.Outcome = OutcomeOK
			r.steps = append(r.steps, s)
			if out != nil && len(o.Value) > 0 {
				return json.Unmarshal(o.Value, out)
			}
			return nil
		}
	}
	return fmt.Errorf("%s failed after %d attempts: %w", step, p.MaxAttempts, last)
}

// activityError strips the engine's wrapping from an activity failure.
func activityError(err error) string {
	return strings.TrimPrefix(err.Error(), "task failed with an error: ")
}

func (r *run) result(taskID, status, msg string) Result {
	steps := r.steps
	if steps == nil {
		steps = []Step{}
	}
	return Result{TaskID: taskID, Status: status, Message: msg, Steps: steps}
}

// info and warn log with the workflow's id, except while the orchestrator
// replays: a replay retraces steps already logged. The id is added per line
// rather than with log.With once per run, because most runs are replays that
// log nothing.
func (r *run) info(msg string, args ...any) {
	if !r.ctx.IsReplaying {
		r.log.Info(msg, append([]any{"workflow_id", string(r.ctx.ID)}, args...)...)
	}
}

func (r *run) warn(msg string, args ...any) {
	if !r.ctx.IsReplaying {
		r.log.Warn(msg, append([]any{"workflow_id", string(r.ctx.ID)}, args...)...)
	}
}
