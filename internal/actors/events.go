package actors

import (
	"time"

	"github.com/taskagent/taskagent/internal/chat"
	"github.com/taskagent/taskagent/internal/task"
)

// Event types. Task events go on event.TopicTasks, conversation events on
// event.TopicConversations; the strings are what subscribers filter on, so they are
// stable.
const (
	EventTaskCreated       = "task.created"
	EventTaskStatusChanged = "task.status_changed"
	EventTaskAssigned      = "task.assigned"
	EventTaskUnassigned    = "task.unassigned"
	EventTaskDeadlineSet   = "task.deadline_set"
	EventTaskOverdue       = "task.overdue"

	EventConversationUpdated = "conversation.updated"
	EventConversationCleared = "conversation.cleared"
)

// TaskEvent is the data of every task event. It carries the whole task after the
// change, so that a subscriber needs no call back to the actor to act on it.
type TaskEvent struct {
	EventType string    `json:"event_type"`
	TaskID    string    `json:"task_id"`
	Task      task.Task `json:"task"`
	// PreviousStatus is set when the change moved the task to another status.
	PreviousStatus task.Status `json:"previous_status,omitempty"`
	Timestamp      time.Time   `json:"timestamp"`
}

// ConversationEvent is the data of conversation events, in the tutorial's shape.
// A conversation.cleared event has no messages.
type ConversationEvent struct {
	EventType        string      `json:"event_type"`
	UserID           string      `json:"user_id"`
	UserMessage      *chat.Entry `json:"user_message,omitempty"`
	AssistantMessage *chat.Entry `json:"assistant_message,omitempty"`
	Timestamp        time.Time   `json:"timestamp"`
}
