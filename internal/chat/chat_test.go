package chat_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskagent/taskagent/internal/chat"
	"github.com/taskagent/taskagent/internal/errs"
)

// entries returns n alternating user and assistant entries numbered from first.
func entries(first, n int) []chat.Entry {
	out := make([]chat.Entry, n)
	for i := range out {
		role := chat.RoleUser
		if (first+i)%2 == 1 {
			role = chat.RoleAssistant
		}
		out[i] = chat.Entry{Role: role, Content: fmt.Sprint(first + i), Timestamp: time.Unix(int64(first+i), 0).UTC()}
	}
	return out
}

func TestAppend(t *testing.T) {
	tests := []struct {
		name         string
		history      []chat.Entry
		maxExchanges int
		add          []chat.Entry
		want         []chat.Entry
	}{
		{"to empty", nil, 2, entries(0, 2), entries(0, 2)},
		{"under the bound", entries(0, 2), 2, entries(2, 2), entries(0, 4)},
		{"at the bound drops the oldest exchange", entries(0, 4), 2, entries(4, 2), entries(2, 4)},
		{"history over the bound is cut too", entries(0, 9), 2, entries(9, 1), entries(6, 4)},
		{"more entries than the bound keeps the newest", entries(0, 2), 1, entries(2, 5), entries(5, 2)},
		{"nothing to add still bounds", entries(0, 6), 2, nil, entries(2, 4)},
		{"zero means the default", entries(0, 2*chat.DefaultMaxExchanges), 0, entries(2*chat.DefaultMaxExchanges, 2), entries(2, 2*chat.DefaultMaxExchanges)},
		{"negative means the default", nil, -1, entries(0, 2), entries(0, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := chat.Append(tt.history, tt.maxExchanges, tt.add...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Append (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAppendDoesNotAlias(t *testing.T) {
	// Spare capacity is where a plain append would write into the caller's array.
	history := make([]chat.Entry, 2, 10)
	copy(history, entries(0, 2))
	spare := history[:3]
	spare[2] = chat.Entry{Content: "untouched"}

	got := chat.Append(history, 5, entries(2, 1)...)
	if spare[2].Content != "untouched" {
		t.Fatalf("Append wrote %q into the spare capacity of its input", spare[2].Content)
	}
	got[0].Content = "changed"
	if history[0].Content != "0" {
		t.Fatalf("changing the result changed the input: got %q, want %q", history[0].Content, "0")
	}

	add := entries(2, 2)
	got = chat.Append(nil, 5, add...)
	got[0].Content = "changed"
	if add[0].Content != "2" {
		t.Fatalf("changing the result changed the appended entries: got %q, want %q", add[0].Content, "2")
	}
}

func TestValidateContent(t *testing.T) {
	valid := []string{"hi", "  padded  ", "line\nline", "héllo ✓", strings.Repeat("a", chat.MaxContentLen)}
	for _, s := range valid {
		if err := chat.ValidateContent(s); err != nil {
			t.Errorf("ValidateContent(%.20q) = %v, want nil", s, err)
		}
	}
	invalid := []string{"", " ", "\n\t ", strings.Repeat("a", chat.MaxContentLen+1), strings.Repeat("é", chat.MaxContentLen/2+1), "a\xffb"}
	for _, s := range invalid {
		err := chat.ValidateContent(s)
		var e *errs.Error
		if !errors.Is(err, errs.Invalid) || !errors.As(err, &e) || e.Field != "content" {
			t.Errorf("ValidateContent(%.20q) = %v, want an Invalid error about field content", s, err)
		}
	}
}

func TestRules(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		history []chat.Entry
		message string
		want    string
	}{
		{"first message", nil, "hello", "Understood. I'm tracking our conversation (message #1)."},
		{"third message", entries(0, 4), "ok", "Understood. I'm tracking our conversation (message #3)."},
		{"help", nil, "Can you HELP me?", "I'm your task management assistant. Ask me about creating, assigning, or tracking tasks."},
		{"task, first", nil, "Create a Task", "I can help with tasks. You have sent 1 message in our conversation."},
		{"task, later", entries(0, 2), "list my tasks", "I can help with tasks. You have sent 2 messages in our conversation."},
		{"task wins over help", nil, "help with a task", "I can help with tasks. You have sent 1 message in our conversation."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chat.Rules{}.Respond(ctx, "user-alice", tt.history, tt.message)
			if err != nil {
				t.Fatalf("Respond: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
