package actors

import (
	"context"
	"time"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/chat"
	"github.com/taskagent/taskagent/internal/task"
)

// Tasks is a typed client of TaskActors over any runtime. It checks the task id
// before invoking, so a malformed id is an errs.Invalid error about "task_id" and
// never reaches a runtime (where it would become a state key or a URL path). It
// checks text fields too: JSON encoding would quietly replace invalid UTF-8 on the
// way, and the actor could no longer tell.
//
// Every method returns the actor's errors with their kinds: errs.Invalid for bad
// input, errs.NotFound for a task that does not exist (except Create),
// errs.Conflict for a change the task's status forbids, errs.Unavailable when the
// runtime cannot reach the actor.
type Tasks struct {
	Invoker actor.Invoker
}

// Create creates task id from s, or returns it unchanged with Created == false when
// it exists with the same title and description (errs.Conflict when they differ).
func (c Tasks) Create(ctx context.Context, id string, s task.Spec) (CreateResult, error) {
	if err := task.ValidateID("task_id", id); err != nil {
		return CreateResult{}, err
	}
	if err := s.Validate(); err != nil {
		return CreateResult{}, err
	}
	return actor.Call[CreateResult](ctx, c.Invoker, TaskActorType, id, MethodCreateTask, s)
}

// Get returns task id.
func (c Tasks) Get(ctx context.Context, id string) (task.Task, error) {
	return c.call(ctx, id, MethodGetTask, nil)
}

// UpdateStatus moves task id to status s; the status it has already is a no-op.
func (c Tasks) UpdateStatus(ctx context.Context, id string, s task.Status) (task.Task, error) {
	return c.call(ctx, id, MethodUpdateStatus, StatusInput{Status: s})
}

// Assign gives task id to assignee; the current assignee is a no-op.
func (c Tasks) Assign(ctx context.Context, id, assignee string) (task.Task, error) {
	if err := task.ValidateID("task_id", id); err != nil {
		return task.Task{}, err
	}
	if err := task.ValidateAssignee(assignee); err != nil {
		return task.Task{}, err
	}
	return c.call(ctx, id, MethodAssignTask, AssignInput{Assignee: assignee})
}

// Unassign clears task id's assignee. With only set, it does so only when only is
// the assignee, so that a compensation never undoes someone else's assignment.
func (c Tasks) Unassign(ctx context.Context, id, only string) (task.Task, error) {
	return c.call(ctx, id, MethodUnassignTask, UnassignInput{Assignee: only})
}

// SetDeadline sets task id's deadline, which must be in the future unless it is
// the deadline the task already has (a retry).
func (c Tasks) SetDeadline(ctx context.Context, id string, deadline time.Time) (task.Task, error) {
	return c.call(ctx, id, MethodSetDeadline, DeadlineInput{Deadline: deadline})
}

func (c Tasks) call(ctx context.Context, id, method string, in any) (task.Task, error) {
	if err := task.ValidateID("task_id", id); err != nil {
		return task.Task{}, err
	}
	return actor.Call[task.Task](ctx, c.Invoker, TaskActorType, id, method, in)
}

// Chats is a typed client of ChatActors over any runtime. Like Tasks it checks the
// user id ("user_id"), and a message's content, before invoking.
type Chats struct {
	Invoker actor.Invoker
}

// Send sends a message from userID and returns it with the reply. A responder that
// fails gives an errs.Unavailable error (unless it gave a kind of its own) and
// leaves the history as it was.
func (c Chats) Send(ctx context.Context, userID, content string) (Exchange, error) {
	if err := task.ValidateID("user_id", userID); err != nil {
		return Exchange{}, err
	}
	if err := chat.ValidateContent(content); err != nil {
		return Exchange{}, err
	}
	return actor.Call[Exchange](ctx, c.Invoker, ChatActorType, userID, MethodProcessMessage, MessageInput{Content: content})
}

// History returns userID's conversation, oldest first; empty, not nil, when there
// is none.
func (c Chats) History(ctx context.Context, userID string) ([]chat.Entry, error) {
	if err := task.ValidateID("user_id", userID); err != nil {
		return nil, err
	}
	h, err := actor.Call[[]chat.Entry](ctx, c.Invoker, ChatActorType, userID, MethodGetHistory, nil)
	if err != nil {
		return nil, err
	}
	if h == nil {
		h = []chat.Entry{}
	}
	return h, nil
}

// Clear deletes userID's conversation; clearing an empty one is a no-op.
func (c Chats) Clear(ctx context.Context, userID string) error {
	if err := task.ValidateID("user_id", userID); err != nil {
		return err
	}
	_, err := actor.Call[struct{}](ctx, c.Invoker, ChatActorType, userID, MethodClearHistory, nil)
	return err
}
