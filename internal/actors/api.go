// Package actors holds taskagent's domain actors, TaskActor and ChatActor, written
// once against the actor contract (package actor) so that every runtime hosts the
// same code, and typed clients that call them through any actor.Invoker.
package actors

import (
	"time"

	"github.com/taskagent/taskagent/internal/chat"
	"github.com/taskagent/taskagent/internal/task"
)

// Actor type names, as registered with a runtime (and with Dapr).
const (
	TaskActorType = "TaskActor"
	ChatActorType = "ChatActor"
)

// TaskActor method names.
const (
	MethodCreateTask   = "CreateTask"
	MethodGetTask      = "GetTask"
	MethodUpdateStatus = "UpdateStatus"
	MethodAssignTask   = "AssignTask"
	MethodUnassignTask = "UnassignTask"
	MethodSetDeadline  = "SetDeadline"
)

// ChatActor method names.
const (
	MethodProcessMessage = "ProcessMessage"
	MethodGetHistory     = "GetHistory"
	MethodClearHistory   = "ClearHistory"
)

// CreateResult is what CreateTask returns.
type CreateResult struct {
	Task task.Task `json:"task"`
	// Created is false when the task already existed with the same title and
	// description and was returned as it is.
	Created bool `json:"created"`
}

// StatusInput is UpdateStatus's input.
type StatusInput struct {
	Status task.Status `json:"status"`
}

// AssignInput is AssignTask's input.
type AssignInput struct {
	Assignee string `json:"assignee"`
}

// UnassignInput is UnassignTask's input.
type UnassignInput struct {
	// Assignee, when set, makes the call a no-op unless the task is assigned to
	// exactly this assignee: a compensation undoes its own assignment only.
	Assignee string `json:"assignee,omitempty"`
}

// DeadlineInput is SetDeadline's input: an absolute time, so that calling it twice
// (an activity retried) sets the same deadline.
type DeadlineInput struct {
	Deadline time.Time `json:"deadline"`
}

// MessageInput is ProcessMessage's input.
type MessageInput struct {
	Content string `json:"content"`
}

// Exchange is what ProcessMessage returns: the user's message and the reply, as
// they were added to the history.
type Exchange struct {
	User      chat.Entry `json:"user_message"`
	Assistant chat.Entry `json:"assistant_message"`
}
