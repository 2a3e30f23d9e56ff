package workflow

import (
	"context"
	"encoding/json"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"

	"github.com/taskagent/taskagent/internal/errs"
	tasks "github.com/taskagent/taskagent/internal/task"
)

// Engine is what the Service needs of a durable task engine. Each runtime provides
// one: the embedded backend in process, or daprd's workflow API.
type Engine interface {
	// Schedule starts orchestrator name as instance id with input. An instance
	// with that id that already exists is an errs.Conflict.
	Schedule(ctx context.Context, name, id string, input any) error
	// Metadata describes instance id; errs.NotFound when there is none.
	Metadata(ctx context.Context, id string) (*api.OrchestrationMetadata, error)
	// History returns the instance's history events, or nil when the engine does
	// not expose them.
	History(ctx context.Context, id string) ([]*backend.HistoryEvent, error)
	// Terminate ends a running instance; errs.NotFound when there is none.
	Terminate(ctx context.Context, id, reason string) error
	// Purge deletes a finished instance; errs.NotFound when there is none,
	// errs.Conflict while it runs.
	Purge(ctx context.Context, id string) error
}

// Service starts and inspects TaskProcessingWorkflows. It is what the HTTP API
// consumes.
type Service struct {
	Engine Engine
	// Notify is the notification retry policy new workflows get.
	Notify RetryPolicy
	// MaxWaiting refuses a new workflow with errs.TooBusy while this many
	// wait for their first step, so that a load the engine cannot keep up with
	// meets back-pressure instead of a backlog that grows without bound. Zero
	// means no limit, as does an engine that cannot count (see Backlog).
	MaxWaiting int
}

// Backlog is an Engine that can tell how many scheduled workflows wait for
// their first step. The embedded engine can; on Dapr the backlog is the
// sidecar's, and MaxWaiting does not apply.
type Backlog interface {
	Waiting() int
}

// Started is Start's answer.
type Started struct {
	ID string `json:"workflow_id"`
	// Status is "started" for a new workflow, "running" for one that was already
	// processing the task.
	Status string `json:"status"`
}

// Start starts the workflow for in.TaskID. While a workflow for the task runs,
// starting it again with the same request returns that one, and with another
// request is an errs.Conflict; once it has finished, starting again is an
// errs.Conflict (purge it first). in.TaskID must be a valid id: it names the
// instance. Every other rule is the workflow's own validation step. A new
// workflow is an errs.TooBusy while MaxWaiting others wait to start.
func (s Service) Start(ctx context.Context, in Input) (Started, error) {
	if err := tasks.ValidateID("task_id", in.TaskID); err != nil {
		return Started{}, err
	}
	if in.DeadlineSeconds == 0 {
		in.DeadlineSeconds = DefaultDeadlineSeconds
	}
	p := s.Notify.normalized()
	in.Notify = &p
	id := InstanceID(in.TaskID)
	for range 2 {
		md, err := s.Engine.Metadata(ctx, id)
		switch {
		case err == nil && running(md.RuntimeStatus):
			if !sameRequest(md.SerializedInput, in) {
				return Started{}, errs.E(errs.Conflict, "workflow %s is running with other data for task %s", id, in.TaskID)
			}
			return Started{ID: id, Status: "running"}, nil
		case err == nil:
			return Started{}, errs.E(errs.Conflict, "workflow %s already finished (%s); delete it to process task %s again",
				id, runtimeStatus(md.RuntimeStatus), in.TaskID)
		case errs.KindOf(err) != errs.NotFound:
			return Started{}, err
		}
		if err := s.admit(); err != nil {
			return Started{}, err
		}
		err = s.Engine.Schedule(ctx, Name, id, in)
		if err == nil {
			return Started{ID: id, Status: "started"}, nil
		}
		if errs.KindOf(err) != errs.Conflict {
			return Started{}, err
		}
		// Another request started it between our look and our start: look again.
	}
	return Started{ID: id, Status: "running"}, nil
}

// admit refuses a new workflow while MaxWaiting workflows wait to start. A
// request for a workflow that already runs is answered before it is asked.
func (s Service) admit() error {
	b, ok := s.Engine.(Backlog)
	if !ok || s.MaxWaiting <= 0 {
		return nil
	}
	if n := b.Waiting(); n >= s.MaxWaiting {
		return errs.E(errs.TooBusy, "%d workflows are waiting to start, this server's limit; retry in a moment", n)
	}
	return nil
}

// sameRequest reports whether a running workflow's stored input is the request in.
func sameRequest(stored string, in Input) bool {
	var was Input
	if err := json.Unmarshal([]byte(stored), &was); err != nil {
		return false
	}
	return was.TaskID == in.TaskID && was.Title == in.Title && was.Description == in.Description &&
		was.Assignee == in.Assignee && was.DeadlineSeconds == in.DeadlineSeconds
}

// Status is a workflow as the API shows it.
type Status struct {
	ID            string    `json:"workflow_id"`
	Name          string    `json:"name"`
	RuntimeStatus string    `json:"runtime_status"`
	CreatedAt     time.Time `json:"created_at"`
	// UpdatedAt is the time of the workflow's latest change: its latest
	// step while it runs, its end once it has finished.
	UpdatedAt time.Time `json:"updated_at"`
	Input     *Input    `json:"input,omitempty"`
	Output    *Result   `json:"output,omitempty"`
	Failure   *Failure  `json:"failure,omitempty"`
	// Reason is why a terminated workflow was terminated.
	Reason string `json:"reason,omitempty"`
	// Timeline lists every attempt, timer and compensation so far.
	Timeline []Step `json:"timeline"`
}

// Failure describes an instance that failed in the engine (a bug, not a task
// failure: those are a completed workflow whose output says "failed").
type Failure struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Get returns workflow id; errs.NotFound when there is none.
func (s Service) Get(ctx context.Context, id string) (Status, error) {
	md, err := s.Engine.Metadata(ctx, id)
	if err != nil {
		return Status{}, err
	}
	st := Status{
		ID:            id,
		Name:          md.Name,
		RuntimeStatus: runtimeStatus(md.RuntimeStatus),
		CreatedAt:     md.CreatedAt.UTC(),
		UpdatedAt:     md.LastUpdatedAt.UTC(),
	}
	if md.SerializedInput != "" {
		var in Input
		if json.Unmarshal([]byte(md.SerializedInput), &in) == nil {
			st.Input = &in
		}
	}
	if md.SerializedOutput != "" {
		var out Result
		if json.Unmarshal([]byte(md.SerializedOutput), &out) == nil && out.Status != "" {
			st.Output = &out
			st.Timeline = out.Steps
		} else if md.RuntimeStatus == api.RUNTIME_STATUS_TERMINATED {
			// A terminated workflow's output is the reason it was given.
			var reason string
			if json.Unmarshal([]byte(md.SerializedOutput), &reason) == nil {
				st.Reason = reason
			}
		}
	}
	if fd := md.FailureDetails; fd != nil {
		st.Failure = &Failure{Type: fd.GetErrorType(), Message: fd.GetErrorMessage()}
	}
	if st.Timeline == nil {
		hist, err := s.Engine.History(ctx, id)
		if err != nil {
			return Status{}, err
		}
		st.Timeline = Timeline(hist)
		// An engine may record the time of status changes only; a running
		// workflow was last updated by its latest step.
		if n := len(hist); n > 0 {
			if last := hist[n-1].GetTimestamp().AsTime(); last.After(st.UpdatedAt) {
				st.UpdatedAt = last.UTC()
			}
		}
	}
	return st, nil
}

// Terminate ends running workflow id. Its completed steps are not undone.
func (s Service) Terminate(ctx context.Context, id, reason string) error {
	md, err := s.Engine.Metadata(ctx, id)
	if err != nil {
		return err
	}
	if !running(md.RuntimeStatus) {
		return errs.E(errs.Conflict, "workflow %s is not running (%s)", id, runtimeStatus(md.RuntimeStatus))
	}
	return s.Engine.Terminate(ctx, id, reason)
}

// Purge deletes finished workflow id and its history.
func (s Service) Purge(ctx context.Context, id string) error {
	md, err := s.Engine.Metadata(ctx, id)
	if err != nil {
		return err
	}
	if running(md.RuntimeStatus) {
		return errs.E(errs.Conflict, "workflow %s is still running; terminate it first", id)
	}
	return s.Engine.Purge(ctx, id)
}

func running(s api.OrchestrationStatus) bool {
	switch s {
	case api.RUNTIME_STATUS_RUNNING, api.RUNTIME_STATUS_PENDING, api.RUNTIME_STATUS_SUSPENDED, api.RUNTIME_STATUS_CONTINUED_AS_NEW:
		return true
	}
	return false
}

// runtimeStatus names an engine status the way the API shows it: "RUNNING",
// "COMPLETED", "FAILED", "TERMINATED", ...
func runtimeStatus(s api.OrchestrationStatus) string {
	const prefix = "ORCHESTRATION_STATUS_"
	name := s.String()
	if len(name) > len(prefix) && name[:len(prefix)] == prefix {
		return name[len(prefix):]
	}
	return name
}

// Timeline reconstructs the steps so far from an instance's history: each activity
// with its outcome and each durable timer. A finished workflow's own Result.Steps
// names steps more precisely (attempts, compensations).
func Timeline(history []*backend.HistoryEvent) []Step {
	steps := []Step{}
	pending := map[int32]int{} // event id of a scheduling -> index in steps
	attempts := map[string]int{}
	timers := 0
	for _, e := range history {
		at := e.GetTimestamp().AsTime().UTC()
		switch {
		case e.GetTaskScheduled() != nil:
			pending[e.GetEventId()] = len(steps)
			name, kind := e.GetTaskScheduled().GetName(), KindActivity
			if n, ok := stepNames[name]; ok {
				name = n
			}
			if name == stepUnassign {
				kind = KindCompensation
			}
			attempts[name]++
			steps = append(steps, Step{Name: name, Kind: kind, Attempt: attempts[name], Started: at})
		case e.GetTaskCompleted() != nil:
			if i, ok := pending[e.GetTaskCompleted().GetTaskScheduledId()]; ok {
				steps[i].Finished, steps[i].Outcome = at, OutcomeOK
				var o outcome
				if json.Unmarshal([]byte(e.GetTaskCompleted().GetResult().GetValue()), &o) == nil && o.Error != nil {
					steps[i].Outcome, steps[i].Error = OutcomeRejected, o.Error.Error()
				}
			}
		case e.GetTaskFailed() != nil:
			if i, ok := pending[e.GetTaskFailed().GetTaskScheduledId()]; ok {
				steps[i].Finished, steps[i].Outcome = at, OutcomeFailed
				steps[i].Error = e.GetTaskFailed().GetFailureDetails().GetErrorMessage()
			}
		case e.GetTimerCreated() != nil:
			pending[e.GetEventId()] = len(steps)
			timers++
			steps = append(steps, Step{Name: stepBackoff, Kind: KindTimer, Attempt: timers, Started: at})
		case e.GetTimerFired() != nil:
			if i, ok := pending[e.GetTimerFired().GetTimerId()]; ok {
				steps[i].Finished, steps[i].Outcome = at, OutcomeOK
			}
		}
	}
	return steps
}

// stepNames maps activity names to the step names of the timeline.
var stepNames = map[string]string{
	ActivityValidate:    stepValidate,
	ActivityCreate:      stepCreate,
	ActivityAssign:      stepAssign,
	ActivitySetDeadline: stepDeadline,
	ActivityNotify:      stepNotify,
	ActivityUnassign:    stepUnassign,
}
