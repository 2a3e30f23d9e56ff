package httpapi

import (
	"context"
	"time"

	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/chat"
	"github.com/taskagent/taskagent/internal/event"
	"github.com/taskagent/taskagent/internal/task"
)

// TaskService is what the API needs from the task actors; actors.Tasks provides it.
// Every method may also return errs.Unavailable when the runtime cannot reach the
// actor. The API validates input before calling, but implementations must not rely
// on that: other callers (workflows) skip this layer.
type TaskService interface {
	// Create creates task id from s. It returns Created == false with the stored
	// task when id exists with the same title and description, and errs.Conflict when
	// it exists with different ones; errs.Invalid (with Field) for bad input.
	Create(ctx context.Context, id string, s task.Spec) (actors.CreateResult, error)
	// Get returns task id, or errs.NotFound.
	Get(ctx context.Context, id string) (task.Task, error)
	// UpdateStatus moves task id to s: errs.NotFound, errs.Conflict for a move the
	// task's rules forbid, errs.Invalid for an unknown status.
	UpdateStatus(ctx context.Context, id string, s task.Status) (task.Task, error)
	// Assign gives task id to assignee: errs.NotFound, errs.Conflict for a finished
	// task, errs.Invalid for a bad assignee.
	Assign(ctx context.Context, id, assignee string) (task.Task, error)
	// Unassign clears task id's assignee, only if it is only when only is not
	// empty: errs.NotFound, errs.Conflict for a finished task.
	Unassign(ctx context.Context, id, only string) (task.Task, error)
	// SetDeadline sets task id's deadline: errs.NotFound, errs.Conflict for a
	// finished task.
	SetDeadline(ctx context.Context, id string, deadline time.Time) (task.Task, error)
}

// ChatService is what the API needs from the chat actors; actors.Chats provides it.
// Every method may also return errs.Unavailable.
type ChatService interface {
	// Send adds content to userID's conversation and returns it with the reply:
	// errs.Invalid (with Field) for bad content.
	Send(ctx context.Context, userID, content string) (actors.Exchange, error)
	// History returns userID's conversation, oldest first; empty for a new user.
	History(ctx context.Context, userID string) ([]chat.Entry, error)
	// Clear forgets userID's conversation; clearing an empty one is no error.
	Clear(ctx context.Context, userID string) error
}

// EventLog is the durable log of published events that GET /events reads. Each
// runtime provides one; errors are errs.Unavailable when the log cannot be read.
type EventLog interface {
	// Read returns at most limit events with ID > after, oldest first; topic ""
	// means every topic.
	Read(ctx context.Context, topic string, after int64, limit int) ([]event.Event, error)
	// Wait blocks until an event with ID > after exists, on any topic, or ctx is
	// done (then it returns ctx's error).
	Wait(ctx context.Context, after int64) error
}
