package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/chat"
	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/event"
	"github.com/taskagent/taskagent/internal/task"
)

// stateHistory is the state key of a ChatActor's history ([]chat.Entry, oldest
// first). It is part of the stored data.
const stateHistory = "history"

// ChatActor returns the actor type that keeps one user's conversation per actor id.
// r answers the messages (nil means chat.Rules); the history keeps the last
// maxExchanges exchanges (<= 0 means chat.DefaultMaxExchanges), so that state, and
// what is sent to a model, stays bounded however long a user talks.
func ChatActor(r chat.Responder, maxExchanges int) actor.Type {
	if r == nil {
		r = chat.Rules{}
	}
	if maxExchanges <= 0 {
		maxExchanges = chat.DefaultMaxExchanges
	}
	c := chatActor{responder: r, maxExchanges: maxExchanges}
	return actor.Type{
		Name: ChatActorType,
		Methods: map[string]actor.Method{
			MethodProcessMessage: actor.Typed(c.processMessage),
			MethodGetHistory:     actor.Typed(getHistory),
			MethodClearHistory:   actor.Typed(clearHistory),
		},
	}
}

// chatActor holds configuration only; a user's conversation lives in turn state.
type chatActor struct {
	responder    chat.Responder
	maxExchanges int
}

func (c chatActor) processMessage(ctx context.Context, t actor.Turn, in MessageInput) (Exchange, error) {
	userID := t.ActorID()
	if err := task.ValidateID("user_id", userID); err != nil {
		return Exchange{}, err
	}
	if err := chat.ValidateContent(in.Content); err != nil {
		return Exchange{}, err
	}
	history, err := loadHistory(ctx, t)
	if err != nil {
		return Exchange{}, err
	}
	user := chat.Entry{Role: chat.RoleUser, Content: in.Content, Timestamp: t.Now().UTC()}
	// A clone, so that a responder that edits what it is given cannot change what
	// is stored.
	reply, err := c.responder.Respond(ctx, userID, slices.Clone(history), in.Content)
	if err != nil {
		return Exchange{}, responderError(err)
	}
	assistant := chat.Entry{Role: chat.RoleAssistant, Content: reply, Timestamp: t.Now().UTC()}

	if err := t.Set(stateHistory, chat.Append(history, c.maxExchanges, user, assistant)); err != nil {
		return Exchange{}, err
	}
	err = t.Publish(event.TopicConversations, EventConversationUpdated, ConversationEvent{
		EventType:        EventConversationUpdated,
		UserID:           userID,
		UserMessage:      &user,
		AssistantMessage: &assistant,
		Timestamp:        assistant.Timestamp,
	})
	if err != nil {
		return Exchange{}, fmt.Errorf("publish %s: %w", EventConversationUpdated, err)
	}
	return Exchange{User: user, Assistant: assistant}, nil
}

// getHistory returns the history, oldest first; an empty one, never null, when
// there is none, so that clients need not tell the two apart.
func getHistory(ctx context.Context, t actor.Turn, _ struct{}) ([]chat.Entry, error) {
	return loadHistory(ctx, t)
}

func clearHistory(ctx context.Context, t actor.Turn, _ struct{}) (struct{}, error) {
	history, err := loadHistory(ctx, t)
	if err != nil {
		return struct{}{}, err
	}
	if len(history) == 0 {
		return struct{}{}, nil
	}
	t.Delete(stateHistory)
	err = t.Publish(event.TopicConversations, EventConversationCleared, ConversationEvent{
		EventType: EventConversationCleared,
		UserID:    t.ActorID(),
		Timestamp: t.Now().UTC(),
	})
	if err != nil {
		return struct{}{}, fmt.Errorf("publish %s: %w", EventConversationCleared, err)
	}
	return struct{}{}, nil
}

func loadHistory(ctx context.Context, t actor.Turn) ([]chat.Entry, error) {
	history := []chat.Entry{}
	if _, err := t.Get(ctx, stateHistory, &history); err != nil {
		return nil, fmt.Errorf("load history of %s: %w", t.ActorID(), err)
	}
	if history == nil {
		history = []chat.Entry{}
	}
	return history, nil
}

// responderError gives a responder's error a kind. One without a kind is taken to
// be the model or service behind the responder failing, which a later try may get
// past: errs.Unavailable. The cause stays in the chain for the logs.
func responderError(err error) error {
	var e *errs.Error
	if errors.As(err, &e) || errs.KindOf(err) != errs.Internal {
		return fmt.Errorf("respond: %w", err)
	}
	return fmt.Errorf("respond: %w: %w", errs.Unavailable, err)
}
