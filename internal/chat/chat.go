// Package chat is the conversation domain: history entries, the bound on how much
// history a user keeps, and the Responder that produces the assistant's replies. It
// does no I/O of its own.
package chat

import (
	"context"
	"time"
)

// Roles of history entries.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Limits.
const (
	// MaxContentLen is the longest message a user may send, in bytes.
	MaxContentLen = 4000
	// DefaultMaxExchanges is how many exchanges (a user message and its reply) a
	// history keeps by default.
	DefaultMaxExchanges = 10
)

// Entry is one message in a conversation.
type Entry struct {
	Role      string    `json:"role"`
	Content   string    `json:"content"`
	Timestamp time.Time `json:"timestamp"`
}

// Responder produces the assistant's reply to a user's message, given the history
// before it (oldest first).
type Responder interface {
	Respond(ctx context.Context, userID string, history []Entry, message string) (string, error)
}
