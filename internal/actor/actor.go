// Package actor is the contract between taskagent's domain actors and the runtimes
// that host them. A domain actor is a Type: a name, a set of methods and a reminder
// callback, all of them plain functions of a Turn. Actors keep no fields of their
// own: everything that must outlive a call goes through the Turn, which is what lets
// the same actor code run in the embedded host and behind a Dapr sidecar.
//
// A runtime guarantees, for every actor (type, id):
//   - turns: at most one method call or reminder callback runs at a time;
//   - durable state: what a successful turn Set is there for every later turn, across
//     deactivation and restarts; a turn that returns an error leaves state as it was;
//   - reminders: a registered reminder's callback runs at or after its due time, at
//     least once, until it succeeds (a periodic one then repeats);
//   - events: what a successful turn published is delivered at least once.
//
// A turn must not call its own actor (turns do not re-enter): it would wait on itself.
package actor

import (
	"context"
	"encoding/json"
	"time"
)

// Turn is what an actor sees during one method call or reminder callback. State
// writes, reminder changes and published events are buffered in the turn and take
// effect only when the turn succeeds; the embedded runtime commits them in one
// transaction.
type Turn interface {
	// ActorID is the id of the actor this turn runs for.
	ActorID() string
	// Now is the runtime's clock.
	Now() time.Time

	// Get decodes the value stored under key into v and reports whether there was
	// one. It sees this turn's own Set and Delete calls.
	Get(ctx context.Context, key string, v any) (bool, error)
	// Set stores v, encoded as JSON, under key when the turn succeeds.
	Set(key string, v any) error
	// Delete removes key when the turn succeeds.
	Delete(key string)

	// SetReminder registers, or replaces, the actor's reminder called name.
	SetReminder(name string, r Reminder)
	// DeleteReminder unregisters the reminder called name; a missing one is no error.
	DeleteReminder(name string)

	// Publish sends an event of the given type, with data encoded as JSON, on topic
	// when the turn succeeds.
	Publish(topic, eventType string, data any) error
}

// Reminder is a durable timer owned by one actor.
type Reminder struct {
	// Due is when the reminder first fires.
	Due time.Time `json:"due"`
	// Period, when positive, makes the reminder fire again every Period after a
	// successful callback; zero makes it fire once.
	Period time.Duration `json:"period,omitempty"`
	// Data is handed back to the callback unchanged.
	Data json.RawMessage `json:"data,omitempty"`
}

// Method handles one named actor method. Input and output are JSON documents.
type Method func(ctx context.Context, t Turn, input []byte) ([]byte, error)

// RemindFunc handles a reminder that came due. An error leaves the reminder in place
// to be retried with backoff; success removes a one-shot reminder.
type RemindFunc func(ctx context.Context, t Turn, name string, data []byte) error

// Type describes one kind of actor to a runtime.
type Type struct {
	// Name is the actor type name, as used in Dapr ("TaskActor").
	Name string
	// Methods maps method names to their handlers.
	Methods map[string]Method
	// Remind handles reminders; nil when the type registers none.
	Remind RemindFunc
}

// Invoker calls actor methods. Every runtime implements it; the HTTP API and the
// workflow activities consume it.
//
// Invoke returns the method's own error with its errs.Kind intact, errs.NotFound
// (kind) for an unknown actor type or method, and errs.Unavailable when the runtime
// cannot reach the actor.
type Invoker interface {
	Invoke(ctx context.Context, actorType, actorID, method string, input []byte) ([]byte, error)
}

// Typed adapts a function of decoded input to a Method: it decodes the input JSON
// into In (an empty input leaves In zero) and encodes the result as JSON.
func Typed[In, Out any](f func(ctx context.Context, t Turn, in In) (Out, error)) Method {
	return func(ctx context.Context, t Turn, input []byte) ([]byte, error) {
		var in In
		if len(input) > 0 {
			if err := json.Unmarshal(input, &in); err != nil {
				return nil, invalidInput(err)
			}
		}
		out, err := f(ctx, t, in)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	}
}

// Call invokes method on the actor with in encoded as JSON and decodes the result
// into a new Out. It is the typed client side of Typed.
func Call[Out any](ctx context.Context, inv Invoker, actorType, actorID, method string, in any) (Out, error) {
	var out Out
	var input []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return out, err
		}
		input = b
	}
	res, err := inv.Invoke(ctx, actorType, actorID, method, input)
	if err != nil {
		return out, err
	}
	if len(res) > 0 {
		if err := json.Unmarshal(res, &out); err != nil {
			return out, err
		}
	}
	return out, nil
}
