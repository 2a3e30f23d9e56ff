// Package event defines the envelope of the events taskagent publishes: task
// changes on topic "task-events", conversation updates on "conversation-events".
// Runtimes carry events; this package knows nothing of how.
package event

import (
	"encoding/json"
	"time"
)

// Topics the domain actors publish on.
const (
	TopicTasks         = "task-events"
	TopicConversations = "conversation-events"
)

// Event is one published event as stored in, and read back from, an event log.
type Event struct {
	// ID is the event's position in the log: it grows with every event, across
	// topics, and is what a reader resumes after.
	ID    int64     `json:"id"`
	Topic string    `json:"topic"`
	Type  string    `json:"type"`
	Time  time.Time `json:"time"`
	// Source names the actor that published it, as "Type/id".
	Source string          `json:"source,omitempty"`
	Data   json.RawMessage `json:"data"`
}
