package httpapi

import (
	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/runtime/embedded"
)

// What cmd/taskagent passes in: this fails to compile the day their method sets
// drift from what the API consumes.
var (
	_ TaskService = actors.Tasks{}
	_ ChatService = actors.Chats{}
	_ EventLog    = (*embedded.EventLog)(nil)
)
