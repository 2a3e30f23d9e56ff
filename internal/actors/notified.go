package actors

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/event"
)

// MethodRecordNotification records that an assignee was notified about the task.
const MethodRecordNotification = "RecordNotification"

// EventTaskNotified is published once per notification recorded on a task.
const EventTaskNotified = "task.notified"

// stateNotified keeps the ids of the notifications already recorded, newest last.
const stateNotified = "notified"

// maxNotifiedIDs bounds the ids a task remembers. A notification is retried within
// one workflow, so only recent ids can come again.
const maxNotifiedIDs = 16

// NotificationInput is RecordNotification's input.
type NotificationInput struct {
	// ID identifies the notification (the workflow instance that sent it); the same
	// id recorded twice publishes one event.
	ID       string `json:"notification_id"`
	Assignee string `json:"assignee"`
	Notifier string `json:"notifier"`
}

// NotificationResult is RecordNotification's output.
type NotificationResult struct {
	// Recorded is false when the notification had been recorded before.
	Recorded bool `json:"recorded"`
}

// NotifiedEvent is the data of a task.notified event.
type NotifiedEvent struct {
	EventType      string    `json:"event_type"`
	TaskID         string    `json:"task_id"`
	Assignee       string    `json:"assignee"`
	NotificationID string    `json:"notification_id"`
	Notifier       string    `json:"notifier"`
	Timestamp      time.Time `json:"timestamp"`
}

// recordNotification publishes task.notified once per notification id, so that a
// notification activity run twice (activities run at least once) shows once.
func recordNotification(ctx context.Context, t actor.Turn, in NotificationInput) (NotificationResult, error) {
	if _, found, err := loadTask(ctx, t); err != nil || !found {
		if err == nil {
			err = notFound(t)
		}
		return NotificationResult{}, err
	}
	var ids []string
	if _, err := t.Get(ctx, stateNotified, &ids); err != nil {
		return NotificationResult{}, fmt.Errorf("load notifications of %s: %w", t.ActorID(), err)
	}
	if slices.Contains(ids, in.ID) {
		return NotificationResult{}, nil
	}
	ids = append(ids, in.ID)
	if len(ids) > maxNotifiedIDs {
		ids = ids[len(ids)-maxNotifiedIDs:]
	}
	if err := t.Set(stateNotified, ids); err != nil {
		return NotificationResult{}, err
	}
	e := NotifiedEvent{
		EventType:      EventTaskNotified,
		TaskID:         t.ActorID(),
		Assignee:       in.Assignee,
		NotificationID: in.ID,
		Notifier:       in.Notifier,
		Timestamp:      t.Now().UTC(),
	}
	if err := t.Publish(event.TopicTasks, EventTaskNotified, e); err != nil {
		return NotificationResult{}, fmt.Errorf("publish %s: %w", EventTaskNotified, err)
	}
	return NotificationResult{Recorded: true}, nil
}

// RecordNotification records that in.Assignee was notified about task id.
func (c Tasks) RecordNotification(ctx context.Context, id string, in NotificationInput) (NotificationResult, error) {
	return actor.Call[NotificationResult](ctx, c.Invoker, TaskActorType, id, MethodRecordNotification, in)
}
