package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/chat"
	"github.com/taskagent/taskagent/internal/errs"
)

func TestChat(t *testing.T) {
	a := newTestAPI(t)

	ex := decode[actors.Exchange](t, a.do("POST", "/chat/alice/messages", `{"content": "What are my tasks?"}`), http.StatusOK)
	if ex.User.Role != chat.RoleUser || ex.User.Content != "What are my tasks?" || !ex.User.Timestamp.Equal(a.clock.Now()) {
		t.Errorf("user message %+v, want role user, the content sent, stamped now", ex.User)
	}
	if ex.Assistant.Role != chat.RoleAssistant || ex.Assistant.Content == "" {
		t.Errorf("assistant message %+v, want role assistant with content", ex.Assistant)
	}
	ex2 := decode[actors.Exchange](t, a.do("POST", "/chat/alice/messages", `{"content": "Thanks"}`), http.StatusOK)

	got := decode[historyResponse](t, a.do("GET", "/chat/alice/history", ""), http.StatusOK)
	want := historyResponse{UserID: "alice", History: []chat.Entry{ex.User, ex.Assistant, ex2.User, ex2.Assistant}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}

	// Another user's conversation is separate and starts empty, as [] not null.
	r := a.do("GET", "/chat/bob/history", "")
	if got := strings.TrimSpace(string(r.body)); got != `{"user_id":"bob","history":[]}` {
		t.Errorf("new user's history %s, want an empty list", got)
	}

	r = a.do("DELETE", "/chat/alice/history", "")
	if r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Errorf("DELETE history: status %d body %q, want 204 and no body", r.status, r.body)
	}
	got = decode[historyResponse](t, a.do("GET", "/chat/alice/history", ""), http.StatusOK)
	if diff := cmp.Diff(historyResponse{UserID: "alice", History: []chat.Entry{}}, got); diff != "" {
		t.Errorf("history after clearing (-want +got):\n%s", diff)
	}
	// Clearing an empty history is no error.
	last := a.lastEventID()
	if r := a.do("DELETE", "/chat/alice/history", ""); r.status != http.StatusNoContent {
		t.Errorf("second DELETE: status %d, want 204", r.status)
	}
	// ... and publishes nothing.
	a.wantNoEvents(t, last)

	// Each exchange was published with its messages, then the clearing without any;
	// reading bob's empty history published nothing.
	var published []actors.ConversationEvent
	for _, e := range a.eventsAfter(t, 0) {
		published = append(published, conversationEventOf(t, e))
	}
	now := a.clock.Now()
	wantPublished := []actors.ConversationEvent{
		{EventType: actors.EventConversationUpdated, UserID: "alice", UserMessage: &ex.User, AssistantMessage: &ex.Assistant, Timestamp: ex.Assistant.Timestamp},
		{EventType: actors.EventConversationUpdated, UserID: "alice", UserMessage: &ex2.User, AssistantMessage: &ex2.Assistant, Timestamp: ex2.Assistant.Timestamp},
		{EventType: actors.EventConversationCleared, UserID: "alice", Timestamp: now},
	}
	if diff := cmp.Diff(wantPublished, published); diff != "" {
		t.Errorf("conversation events (-want +got):\n%s", diff)
	}
}

func TestChatBadRequests(t *testing.T) {
	a := newTestAPI(t)
	decode[actors.Exchange](t, a.do("POST", "/chat/alice/messages", `{"content": "hello"}`), http.StatusOK)
	longID := strings.Repeat("u", 129)
	cases := []struct {
		name, method, path, contentType, body string
		status                                int
		code                                  errs.Kind
		field                                 string
	}{
		{"missing content", "POST", "/chat/alice/messages", "", `{}`, 400, errs.Invalid, "content"},
		{"blank content", "POST", "/chat/alice/messages", "", `{"content": " \n "}`, 400, errs.Invalid, "content"},
		{"content too long", "POST", "/chat/alice/messages", "", `{"content": "` + strings.Repeat("a", chat.MaxContentLen+1) + `"}`, 400, errs.Invalid, "content"},
		{"content not a string", "POST", "/chat/alice/messages", "", `{"content": ["hi"]}`, 400, errs.Invalid, "content"},
		{"unknown field", "POST", "/chat/alice/messages", "", `{"content": "hi", "role": "system"}`, 400, errs.Invalid, "role"},
		{"malformed", "POST", "/chat/alice/messages", "", `{"content": "hi"`, 400, errs.Invalid, ""},
		{"trailing", "POST", "/chat/alice/messages", "", `{"content": "hi"} x`, 400, errs.Invalid, ""},
		{"empty body", "POST", "/chat/alice/messages", "", ``, 400, errs.Invalid, ""},
		{"wrong content type", "POST", "/chat/alice/messages", "text/plain", `{"content": "hi"}`, 415, kindUnsupportedMediaType, ""},
		{"oversize", "POST", "/chat/alice/messages", "", `{"content": "` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}`, 413, errs.TooLarge, ""},
		{"send bad user", "POST", "/chat/al%20ice/messages", "", `{"content": "hi"}`, 400, errs.Invalid, "user_id"},
		{"send long user", "POST", "/chat/" + longID + "/messages", "", `{"content": "hi"}`, 400, errs.Invalid, "user_id"},
		{"history bad user", "GET", "/chat/alice%3F/history", "", ``, 400, errs.Invalid, "user_id"},
		{"history long user", "GET", "/chat/" + longID + "/history", "", ``, 400, errs.Invalid, "user_id"},
		{"clear bad user", "DELETE", "/chat/_alice/history", "", ``, 400, errs.Invalid, "user_id"},
		{"clear long user", "DELETE", "/chat/" + longID + "/history", "", ``, 400, errs.Invalid, "user_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := decode[historyResponse](t, a.do("GET", "/chat/alice/history", ""), http.StatusOK)
			last := a.lastEventID()
			r := a.do(c.method, c.path, c.body, contentType(c.contentType)...)
			wantError(t, r, c.status, c.code, c.field)
			after := decode[historyResponse](t, a.do("GET", "/chat/alice/history", ""), http.StatusOK)
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("history changed by a refused request (-before +after):\n%s", diff)
			}
			a.wantNoEvents(t, last)
		})
	}
}
