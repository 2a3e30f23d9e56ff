package actors_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/chat"
	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/event"
	"github.com/taskagent/taskagent/internal/task"
)

const userID = "user-alice"

// responder is a chat.Responder made of a function.
type responder func(ctx context.Context, userID string, history []chat.Entry, message string) (string, error)

func (f responder) Respond(ctx context.Context, userID string, history []chat.Entry, message string) (string, error) {
	return f(ctx, userID, history, message)
}

// echo replies "re: <message>".
var echo = responder(func(_ context.Context, _ string, _ []chat.Entry, m string) (string, error) {
	return "re: " + m, nil
})

func newChatHost(t *testing.T, r chat.Responder, maxExchanges int) (*host, actors.Chats) {
	t.Helper()
	h := newHost(t, actors.ChatActor(r, maxExchanges))
	return h, actors.Chats{Invoker: h}
}

func TestProcessMessage(t *testing.T) {
	ctx := context.Background()
	h, c := newChatHost(t, nil, 0) // the default responder, chat.Rules
	now := h.clock()

	ex, err := c.Send(ctx, userID, "Hello")
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := actors.Exchange{
		User:      chat.Entry{Role: chat.RoleUser, Content: "Hello", Timestamp: now},
		Assistant: chat.Entry{Role: chat.RoleAssistant, Content: "Understood. I'm tracking our conversation (message #1).", Timestamp: now},
	}
	if diff := cmp.Diff(want, ex); diff != "" {
		t.Errorf("Send (-want +got):\n%s", diff)
	}

	h.advance(time.Second)
	ex2, err := c.Send(ctx, userID, "any tasks?")
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if want := "I can help with tasks. You have sent 2 messages in our conversation."; ex2.Assistant.Content != want {
		t.Errorf("reply = %q, want %q", ex2.Assistant.Content, want)
	}

	history, err := c.History(ctx, userID)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if diff := cmp.Diff([]chat.Entry{ex.User, ex.Assistant, ex2.User, ex2.Assistant}, history); diff != "" {
		t.Errorf("History (-want +got):\n%s", diff)
	}
}

func TestConversationEventShape(t *testing.T) {
	ctx := context.Background()
	h, c := newChatHost(t, echo, 0)
	ex, err := c.Send(ctx, userID, "hi there")
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	events := h.published()
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	e := events[0]
	if e.Topic != event.TopicConversations || e.Type != actors.EventConversationUpdated || e.Source != actors.ChatActorType+"/"+userID {
		t.Errorf("envelope = %s %s from %s, want %s %s from %s/%s", e.Topic, e.Type, e.Source,
			event.TopicConversations, actors.EventConversationUpdated, actors.ChatActorType, userID)
	}

	// The tutorial's shape, field by field, as a subscriber in any language sees it.
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatalf("decode event: %v", err)
	}
	ts := h.clock().Format(time.RFC3339Nano)
	want := map[string]any{
		"event_type":        "conversation.updated",
		"user_id":           userID,
		"user_message":      map[string]any{"role": "user", "content": "hi there", "timestamp": ts},
		"assistant_message": map[string]any{"role": "assistant", "content": "re: hi there", "timestamp": ts},
		"timestamp":         ts,
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("event data (-want +got):\n%s", diff)
	}

	var ce actors.ConversationEvent
	if err := json.Unmarshal(e.Data, &ce); err != nil {
		t.Fatalf("decode event: %v", err)
	}
	if ce.UserMessage == nil || *ce.UserMessage != ex.User || ce.AssistantMessage == nil || *ce.AssistantMessage != ex.Assistant {
		t.Errorf("event messages %+v %+v, want the exchange %+v", ce.UserMessage, ce.AssistantMessage, ex)
	}
}

func TestHistoryBounded(t *testing.T) {
	ctx := context.Background()
	const maxExchanges = 3
	h, c := newChatHost(t, echo, maxExchanges)
	for i := range 5 {
		if _, err := c.Send(ctx, userID, fmt.Sprint(i)); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	history, err := c.History(ctx, userID)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	var got []string
	for _, e := range history {
		got = append(got, e.Role+":"+e.Content)
	}
	want := []string{"user:2", "assistant:re: 2", "user:3", "assistant:re: 3", "user:4", "assistant:re: 4"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if n := len(h.published()); n != 5 {
		t.Errorf("got %d events, want 5", n)
	}
}

func TestHistoryBoundedByDefault(t *testing.T) {
	ctx := context.Background()
	_, c := newChatHost(t, echo, -1)
	for i := range chat.DefaultMaxExchanges + 2 {
		if _, err := c.Send(ctx, userID, fmt.Sprint(i)); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	history, err := c.History(ctx, userID)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if len(history) != 2*chat.DefaultMaxExchanges || history[0].Content != "2" {
		t.Errorf("got %d entries from %q, want %d from \"2\"", len(history), history[0].Content, 2*chat.DefaultMaxExchanges)
	}
}

func TestResponderSeesHistoryBeforeMessage(t *testing.T) {
	ctx := context.Background()
	var seen [][]chat.Entry
	r := responder(func(_ context.Context, uid string, history []chat.Entry, m string) (string, error) {
		if uid != userID {
			t.Errorf("responder got user %q, want %q", uid, userID)
		}
		seen = append(seen, append([]chat.Entry(nil), history...))
		// A careless responder edits what it was given; the stored history must
		// not change with it.
		for i := range history {
			history[i].Content = "scribbled"
		}
		return "ok", nil
	})
	_, c := newChatHost(t, r, 0)
	for _, m := range []string{"one", "two"} {
		if _, err := c.Send(ctx, userID, m); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if len(seen[0]) != 0 {
		t.Errorf("first call saw %d entries, want 0", len(seen[0]))
	}
	if len(seen[1]) != 2 || seen[1][0].Content != "one" || seen[1][1].Content != "ok" {
		t.Errorf("second call saw %+v, want the first exchange", seen[1])
	}
	history, _ := c.History(ctx, userID)
	for _, e := range history {
		if e.Content == "scribbled" {
			t.Fatalf("the responder's edit reached the stored history: %+v", history)
		}
	}
}

func TestResponderError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		kind errs.Kind
	}{
		{"plain error becomes unavailable", errors.New("model timed out"), errs.Unavailable},
		{"context deadline becomes unavailable", context.DeadlineExceeded, errs.Unavailable},
		{"kinded error keeps its kind", errs.E(errs.TooLarge, "prompt too long"), errs.TooLarge},
		{"wrapped kind is kept", fmt.Errorf("call: %w", errs.Conflict), errs.Conflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			fail := false
			r := responder(func(ctx context.Context, uid string, h []chat.Entry, m string) (string, error) {
				if fail {
					return "", tt.err
				}
				return echo(ctx, uid, h, m)
			})
			h, c := newChatHost(t, r, 0)
			if _, err := c.Send(ctx, userID, "first"); err != nil {
				t.Fatalf("Send: %v", err)
			}
			before := h.state(actors.ChatActorType, userID, "history")

			fail = true
			_, err := c.Send(ctx, userID, "second")
			wantKind(t, err, tt.kind)
			if !errors.Is(err, tt.err) {
				t.Errorf("got %v, want the responder's error in the chain", err)
			}
			if after := h.state(actors.ChatActorType, userID, "history"); string(after) != string(before) {
				t.Errorf("history changed by a failed turn:\nbefore %s\nafter  %s", before, after)
			}
			if n := len(h.published()); n != 1 {
				t.Errorf("got %d events, want only the first exchange's", n)
			}
		})
	}
}

func TestProcessMessageInvalid(t *testing.T) {
	ctx := context.Background()
	called := false
	r := responder(func(context.Context, string, []chat.Entry, string) (string, error) {
		called = true
		return "", nil
	})
	h, _ := newChatHost(t, r, 0)
	for _, content := range []string{"", "   ", strings.Repeat("x", chat.MaxContentLen+1)} {
		// Past the client, which checks content too.
		in, _ := json.Marshal(actors.MessageInput{Content: content})
		_, err := h.Invoke(ctx, actors.ChatActorType, userID, actors.MethodProcessMessage, in)
		wantField(t, err, "content")
	}
	// Straight to the runtime, past the client's own check.
	in, _ := json.Marshal(actors.MessageInput{Content: "hi"})
	_, err := h.Invoke(ctx, actors.ChatActorType, "user alice", actors.MethodProcessMessage, in)
	wantField(t, err, "user_id")

	if called {
		t.Error("the responder was called for an invalid message")
	}
	if b := h.state(actors.ChatActorType, userID, "history"); b != nil {
		t.Errorf("an invalid message stored %s", b)
	}
	if n := len(h.published()); n != 0 {
		t.Errorf("got %d events, want 0", n)
	}
}

func TestGetHistoryEmpty(t *testing.T) {
	ctx := context.Background()
	h, c := newChatHost(t, echo, 0)
	out, err := h.Invoke(ctx, actors.ChatActorType, userID, actors.MethodGetHistory, nil)
	if err != nil {
		t.Fatalf("GetHistory: %v", err)
	}
	if string(out) != "[]" {
		t.Errorf("GetHistory = %s, want []", out)
	}
	history, err := c.History(ctx, userID)
	if err != nil || history == nil || len(history) != 0 {
		t.Errorf("History = %#v, %v; want an empty, non-nil slice", history, err)
	}
}

func TestClearHistory(t *testing.T) {
	ctx := context.Background()
	h, c := newChatHost(t, echo, 0)
	if _, err := c.Send(ctx, userID, "hi"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	h.advance(time.Second)

	out, err := h.Invoke(ctx, actors.ChatActorType, userID, actors.MethodClearHistory, nil)
	if err != nil {
		t.Fatalf("ClearHistory: %v", err)
	}
	if string(out) != "{}" {
		t.Errorf("ClearHistory = %s, want {}", out)
	}
	if b := h.state(actors.ChatActorType, userID, "history"); b != nil {
		t.Errorf("history still stored: %s", b)
	}
	// Clearing again, through the client: nothing to clear, no event.
	if err := c.Clear(ctx, userID); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	events := h.published()
	if got := h.eventTypes(); !cmp.Equal(got, []string{actors.EventConversationUpdated, actors.EventConversationCleared}) {
		t.Fatalf("events = %v, want one update and one clear", got)
	}
	var m map[string]any
	if err := json.Unmarshal(events[1].Data, &m); err != nil {
		t.Fatalf("decode event: %v", err)
	}
	want := map[string]any{"event_type": "conversation.cleared", "user_id": userID, "timestamp": h.clock().Format(time.RFC3339Nano)}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("cleared event (-want +got):\n%s", diff)
	}

	// The conversation starts over.
	ex, err := c.Send(ctx, userID, "again")
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if history, _ := c.History(ctx, userID); len(history) != 2 || history[0] != ex.User {
		t.Errorf("history after clear = %+v, want only the new exchange", history)
	}
}

func TestConcurrentMessages(t *testing.T) {
	// Turns of one actor run one at a time: no message is lost to a concurrent
	// read-modify-write of the history.
	ctx := context.Background()
	const n, maxExchanges = 30, 50
	h, c := newChatHost(t, echo, maxExchanges)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := c.Send(ctx, userID, fmt.Sprint(i)); err != nil {
				t.Errorf("Send %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	history, err := c.History(ctx, userID)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if len(history) != 2*n {
		t.Errorf("got %d entries, want %d", len(history), 2*n)
	}
	for i := 0; i+1 < len(history); i += 2 {
		if history[i].Role != chat.RoleUser || history[i+1].Content != "re: "+history[i].Content {
			t.Fatalf("entries %d and %d are not an exchange: %+v %+v", i, i+1, history[i], history[i+1])
		}
	}
	if got := len(h.published()); got != n {
		t.Errorf("got %d events, want %d", got, n)
	}
}

func TestChatsClientChecksIDs(t *testing.T) {
	ctx := context.Background()
	h, c := newChatHost(t, echo, 0)
	for _, id := range []string{"", "a/b", "x y", strings.Repeat("a", 200)} {
		calls := map[string]func() error{
			"Send":    func() error { _, err := c.Send(ctx, id, "hi"); return err },
			"History": func() error { _, err := c.History(ctx, id); return err },
			"Clear":   func() error { return c.Clear(ctx, id) },
		}
		for name, call := range calls {
			wantField(t, call(), "user_id")
			if n := h.turnCount(); n != 0 {
				t.Fatalf("%s(%q) reached the runtime: %d turns", name, id, n)
			}
		}
	}
}

func TestClientsCheckTextBeforeEncoding(t *testing.T) {
	// JSON encoding turns invalid UTF-8 into U+FFFD, after which the actor cannot
	// see that the text was bad; the clients refuse it first.
	ctx := context.Background()
	h := newHost(t, actors.TaskActor(), actors.ChatActor(echo, 0))
	tasks, chats := actors.Tasks{Invoker: h}, actors.Chats{Invoker: h}

	_, err := chats.Send(ctx, userID, "bad \xff")
	wantField(t, err, "content")
	_, err = tasks.Create(ctx, "task-1", task.Spec{Title: "bad \xff"})
	wantField(t, err, "title")
	_, err = tasks.Assign(ctx, "task-1", "bad \xff")
	wantField(t, err, "assignee")
	if n := h.turnCount(); n != 0 {
		t.Errorf("invalid text reached the runtime: %d turns", n)
	}
}

func TestUnknownMethod(t *testing.T) {
	h, _ := newChatHost(t, echo, 0)
	_, err := h.Invoke(context.Background(), actors.ChatActorType, userID, "Nope", nil)
	wantKind(t, err, errs.NotFound)
	// And a typed client's errors pass through with their kinds.
	_, err = actor.Call[struct{}](context.Background(), h, "NoSuchActor", userID, "X", nil)
	wantKind(t, err, errs.NotFound)
}

func TestChatFailedTurnChangesNothing(t *testing.T) {
	ctx := context.Background()
	h, c := newChatHost(t, echo, 0)
	if _, err := c.Send(ctx, userID, "first"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	before := h.state(actors.ChatActorType, userID, "history")
	broken := errors.New("broker down")
	h.setPublishErr(broken)
	if _, err := c.Send(ctx, userID, "second"); !errors.Is(err, broken) {
		t.Errorf("Send with the broker down = %v, want %v", err, broken)
	}
	if err := c.Clear(ctx, userID); !errors.Is(err, broken) {
		t.Errorf("Clear with the broker down = %v, want %v", err, broken)
	}
	if after := h.state(actors.ChatActorType, userID, "history"); string(after) != string(before) {
		t.Errorf("history changed by failed turns:\nbefore %s\nafter  %s", before, after)
	}
}

func TestDamagedHistory(t *testing.T) {
	ctx := context.Background()
	h, c := newChatHost(t, echo, 0)
	h.putState(actors.ChatActorType, userID, "history", []byte(`{"not":"a list"}`))
	_, err := c.History(ctx, userID)
	wantKind(t, err, errs.Internal)
	_, err = c.Send(ctx, userID, "hi")
	wantKind(t, err, errs.Internal)
	wantKind(t, c.Clear(ctx, userID), errs.Internal)
}
