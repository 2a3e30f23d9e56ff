package actor

import (
	"log/slog"
	"runtime/debug"

	"github.com/taskagent/taskagent/internal/errs"
)

// Guard runs one turn's code for a runtime. A panic in it becomes an errs.Internal
// error, logged once with its stack, so that one actor's bug fails its call and
// not the process.
func Guard(log *slog.Logger, actorType, actorID string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("actor turn panicked", "actor_type", actorType, "actor_id", actorID, "panic", r, "stack", string(debug.Stack()))
			err = errs.E(errs.Internal, "actor %s/%s failed", actorType, actorID)
		}
	}()
	return f()
}
