package workflow

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/taskagent/taskagent/internal/task"
)

// Name is the orchestrator's registered name.
const Name = "TaskProcessingWorkflow"

// InstancePrefix starts every instance id: a task's workflow is InstancePrefix+task_id,
// so a task has at most one workflow.
const InstancePrefix = "task-workflow-"

// DefaultDeadlineSeconds is the deadline of a task whose request names none.
const DefaultDeadlineSeconds = 3600

// InstanceID returns the id of the workflow that processes task taskID.
func InstanceID(taskID string) string { return InstancePrefix + taskID }

// Result statuses.
const (
	StatusCompleted = "completed"
	StatusRejected  = "rejected"
	StatusFailed    = "failed"
)

// Input is what a workflow is started with: the seed's request, plus the retry
// policy for notifications. The policy is fixed when the workflow starts, so a
// workflow resumed after a restart with other settings still replays as it ran.
type Input struct {
	TaskID          string       `json:"task_id"`
	Title           string       `json:"title"`
	Description     string       `json:"description"`
	Assignee        string       `json:"assignee"`
	DeadlineSeconds int64        `json:"deadline_seconds,omitempty"`
	Notify          *RetryPolicy `json:"notify_policy,omitempty"`
}

// RetryPolicy says how often and how patiently a step is tried.
type RetryPolicy struct {
	MaxAttempts int `json:"max_attempts"`
	// FirstInterval is the wait before the second attempt; each later wait is
	// Coefficient times the one before.
	FirstInterval Duration `json:"first_interval"`
	Coefficient   float64  `json:"backoff_coefficient"`
	// MaxInterval caps each wait.
	MaxInterval Duration `json:"max_interval"`
	// AttemptTimeout bounds one attempt.
	AttemptTimeout Duration `json:"attempt_timeout"`
}

// Duration is a time.Duration that reads and writes JSON as a string such as "1s".
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	// Decoded at every replay of every workflow: plain strings skip the decoder.
	s, ok := strings.CutPrefix(string(b), `"`)
	if ok {
		s, ok = strings.CutSuffix(s, `"`)
	}
	if !ok || strings.ContainsRune(s, '\\') {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("a duration is a string such as \"1s\": %w", err)
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// DefaultNotifyPolicy is the seed's: 3 attempts, waiting 1 s and then 2 s.
func DefaultNotifyPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 3, FirstInterval: Duration(time.Second), Coefficient: 2, MaxInterval: Duration(time.Minute), AttemptTimeout: Duration(10 * time.Second)}
}

// actorPolicy retries the steps that call actors: they fail only when the runtime
// is briefly unavailable.
var actorPolicy = RetryPolicy{MaxAttempts: 3, FirstInterval: Duration(time.Second), Coefficient: 2, MaxInterval: Duration(10 * time.Second), AttemptTimeout: Duration(30 * time.Second)}

// normalized fills in defaults and clamps the policy to sane values.
func (p RetryPolicy) normalized() RetryPolicy {
	d := DefaultNotifyPolicy()
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	p.MaxAttempts = min(p.MaxAttempts, 20)
	if p.FirstInterval <= 0 {
		p.FirstInterval = d.FirstInterval
	}
	if p.Coefficient < 1 {
		p.Coefficient = d.Coefficient
	}
	if p.MaxInterval <= 0 {
		p.MaxInterval = d.MaxInterval
	}
	if p.AttemptTimeout <= 0 {
		p.AttemptTimeout = d.AttemptTimeout
	}
	return p
}

// wait returns the backoff before attempt n (n >= 2).
func (p RetryPolicy) wait(n int) time.Duration {
	d := float64(p.FirstInterval) * math.Pow(p.Coefficient, float64(n-2))
	if d > float64(p.MaxInterval) {
		return time.Duration(p.MaxInterval)
	}
	return time.Duration(d)
}

// Result is a finished workflow's output.
type Result struct {
	TaskID  string `json:"task_id"`
	Status  string `json:"status"`
	Message string `json:"message"`
	// Issues lists every validation problem of a rejected task.
	Issues []string `json:"issues,omitempty"`
	// Compensations says what was undone after a failure.
	Compensations []Compensation `json:"compensations,omitempty"`
	// Steps is the timeline: every attempt, backoff and compensation, with times.
	Steps []Step `json:"steps"`
}

// Step is one entry of a workflow's timeline.
type Step struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"` // activity, timer or compensation
	Attempt  int       `json:"attempt,omitempty"`
	Started  time.Time `json:"started_at"`
	Finished time.Time `json:"finished_at"`
	Outcome  string    `json:"outcome"` // ok, failed (may be retried) or rejected (will not be)
	Error    string    `json:"error,omitempty"`
}

// Step kinds and outcomes.
const (
	KindActivity     = "activity"
	KindTimer        = "timer"
	KindCompensation = "compensation"

	OutcomeOK       = "ok"
	OutcomeFailed   = "failed"
	OutcomeRejected = "rejected"
)

// Compensation reports one undo step after a failure.
type Compensation struct {
	Step     string `json:"step"`
	Status   string `json:"status"` // done or failed
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
}

// Validation is the validate step's verdict.
type Validation struct {
	Valid  bool     `json:"is_valid"`
	Issues []string `json:"issues"`
}

// Activity inputs.
type (
	// CreateInput is the create step's input.
	CreateInput struct {
		TaskID string    `json:"task_id"`
		Spec   task.Spec `json:"spec"`
	}
	// AssignInput is the assign and unassign steps' input.
	AssignInput struct {
		TaskID   string `json:"task_id"`
		Assignee string `json:"assignee"`
	}
	// DeadlineInput is the deadline step's input: an absolute time, computed from
	// the workflow's start, so that a retried step sets the same deadline.
	DeadlineInput struct {
		TaskID   string    `json:"task_id"`
		Deadline time.Time `json:"deadline"`
	}
	// NotifyInput is the notify step's input.
	NotifyInput struct {
		NotificationID string    `json:"notification_id"`
		TaskID         string    `json:"task_id"`
		Title          string    `json:"title"`
		Assignee       string    `json:"assignee"`
		Deadline       time.Time `json:"deadline"`
		Attempt        int       `json:"attempt"`
		Timeout        Duration  `json:"timeout"`
	}
)
