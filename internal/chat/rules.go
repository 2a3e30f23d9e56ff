package chat

import (
	"context"
	"fmt"
	"strings"
)

// Rules is the default Responder: a few fixed replies chosen by keyword, in the
// spirit of the tutorial's agent. It needs no model or network, so a fresh install
// and the tests have a working chat; a real model plugs in as another Responder.
type Rules struct{}

var _ Responder = Rules{}

// Respond answers message: about tasks when it mentions them, with an introduction
// when it asks for help, and otherwise with an acknowledgement that counts the
// conversation. Tasks win over help, as in the tutorial.
func (Rules) Respond(_ context.Context, _ string, history []Entry, message string) (string, error) {
	// n counts this message too: the user's messages kept in the history, plus one.
	n := 1
	for _, e := range history {
		if e.Role == RoleUser {
			n++
		}
	}
	m := strings.ToLower(message)
	switch {
	case strings.Contains(m, "task"):
		return fmt.Sprintf("I can help with tasks. You have sent %s in our conversation.", plural(n, "message")), nil
	case strings.Contains(m, "help"):
		return "I'm your task management assistant. Ask me about creating, assigning, or tracking tasks.", nil
	default:
		return fmt.Sprintf("Understood. I'm tracking our conversation (message #%d).", n), nil
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
