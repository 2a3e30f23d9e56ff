package notify

import (
	"context"
	"errors"
	"time"

	"github.com/taskagent/taskagent/internal/errs"
)

// Notification tells one assignee about one task. It is what a webhook receives as
// its JSON body.
type Notification struct {
	// ID is the idempotency key: the id of the workflow instance that sends it. A
	// workflow activity runs at least once, so a receiver sees the same ID again after
	// a retry and must treat it as a duplicate.
	ID       string     `json:"id"`
	TaskID   string     `json:"task_id"`
	Title    string     `json:"title"`
	Assignee string     `json:"assignee"`
	Deadline *time.Time `json:"deadline,omitempty"`
	// Attempt counts delivery attempts, from 1, so that receivers and logs can tell a
	// retry from a first try.
	Attempt int `json:"attempt"`
}

// Validate reports every missing field at once, as errs.Invalid errors: a
// notification without an idempotency key could not be deduplicated downstream.
func (n Notification) Validate() error {
	var problems []error
	if n.ID == "" {
		problems = append(problems, errs.Field("id", "is required (the idempotency key)"))
	}
	if n.TaskID == "" {
		problems = append(problems, errs.Field("task_id", "is required"))
	}
	if n.Assignee == "" {
		problems = append(problems, errs.Field("assignee", "is required"))
	}
	if n.Attempt < 0 {
		problems = append(problems, errs.Field("attempt", "must not be negative, got %d", n.Attempt))
	}
	return errors.Join(problems...)
}

// Notifier delivers notifications. Implementations are safe for concurrent use.
type Notifier interface {
	// Notify delivers n, or says why not. An error of kind errs.Unavailable is
	// transient: the service is down, slow or overloaded, or the circuit is open, and
	// a later attempt may succeed. errs.Invalid is permanent: the notification or the
	// configuration is wrong and retrying cannot help. Any other error is a bug.
	// Delivery is at least once: receivers dedupe on n.ID.
	Notify(ctx context.Context, n Notification) error
	// Name says which kind of notifier delivers ("log", "webhook"), for logs and
	// status; wrappers report the name of what they wrap.
	Name() string
}

// Sentinel errors, for callers that need more than the kind: both are
// errs.Unavailable, and errors.Is(err, ErrCircuitOpen) tells a fast failure from one
// that reached the service.
var (
	// ErrCircuitOpen is returned, wrapped, by a Breaker that refuses a request
	// without trying it.
	ErrCircuitOpen = errs.E(errs.Unavailable, "circuit open")
	// ErrInjected is returned, wrapped, by a FaultInjector for a failure it made up.
	ErrInjected = errs.E(errs.Unavailable, "injected failure")
	// ErrRecipient marks a failure that concerns one recipient, not the
	// notification service: it is retried, but does not count against the circuit
	// breaker, so that a few unreachable assignees do not cut off everyone else.
	ErrRecipient = errs.E(errs.Unavailable, "recipient unreachable")
)
