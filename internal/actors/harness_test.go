package actors_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/event"
)

// host is an in-memory actor runtime for unit tests. It keeps the promises of
// package actor that the domain actors rely on: one turn at a time per actor,
// state, reminder changes and events buffered in the turn and applied only when it
// succeeds, and state stored as JSON so that every turn reads what a real store
// would give back. Reminders never fire on their own: a test fires them with fire,
// at a time it sets with the clock.
type host struct {
	mu     sync.Mutex // guards the fields below, never held during a turn
	now    time.Time
	types  map[string]actor.Type
	actors map[actorKey]*instance
	events []event.Event
	turns  int // turns run, committed or not
	// publishErr, when set, is what Publish returns: a broker that is down.
	publishErr error
}

type actorKey struct{ typ, id string }

// instance is one actor's durable data; mu makes its turns run one at a time.
type instance struct {
	mu        sync.Mutex
	state     map[string][]byte
	reminders map[string]actor.Reminder
}

func newHost(t *testing.T, types ...actor.Type) *host {
	t.Helper()
	h := &host{
		now:    time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		types:  map[string]actor.Type{},
		actors: map[actorKey]*instance{},
	}
	for _, typ := range types {
		if _, dup := h.types[typ.Name]; dup {
			t.Fatalf("actor type %s registered twice", typ.Name)
		}
		h.types[typ.Name] = typ
	}
	return h
}

// Invoke implements actor.Invoker.
func (h *host) Invoke(ctx context.Context, actorType, actorID, method string, input []byte) ([]byte, error) {
	typ, ok := h.actorType(actorType)
	if !ok {
		return nil, errs.E(errs.NotFound, "no actor type %s", actorType)
	}
	m, ok := typ.Methods[method]
	if !ok {
		return nil, errs.E(errs.NotFound, "actor type %s has no method %s", actorType, method)
	}
	var out []byte
	err := h.runTurn(actorType, actorID, func(t *turn) error {
		var err error
		out, err = m(ctx, t, input)
		return err
	})
	return out, err
}

// fire runs the callback of a registered reminder, as a runtime does when it
// comes due, and removes a one-shot reminder when the callback succeeds. It fails
// the test when there is no such reminder.
func (h *host) fire(t *testing.T, actorType, actorID, name string) error {
	t.Helper()
	r, ok := h.reminder(actorType, actorID, name)
	if !ok {
		t.Fatalf("%s/%s has no reminder %q", actorType, actorID, name)
	}
	return h.fireWith(t, actorType, actorID, name, r.Data)
}

// fireWith runs the reminder callback with the given data, registered or not: a
// runtime may deliver a reminder that a later turn has replaced or removed.
func (h *host) fireWith(t *testing.T, actorType, actorID, name string, data []byte) error {
	t.Helper()
	typ, ok := h.actorType(actorType)
	if !ok || typ.Remind == nil {
		t.Fatalf("actor type %s takes no reminders", actorType)
	}
	return h.runTurn(actorType, actorID, func(tn *turn) error {
		if err := typ.Remind(context.Background(), tn, name, data); err != nil {
			return err
		}
		// A one-shot reminder is done, unless the callback registered it anew.
		if r, ok := tn.inst.reminders[name]; ok && r.Period == 0 {
			if _, touched := tn.reminders[name]; !touched {
				tn.DeleteReminder(name)
			}
		}
		return nil
	})
}

func (h *host) runTurn(actorType, actorID string, f func(*turn) error) error {
	inst := h.instance(actorType, actorID)
	inst.mu.Lock()
	defer inst.mu.Unlock()

	h.mu.Lock()
	h.turns++
	now := h.now
	publishErr := h.publishErr
	h.mu.Unlock()

	t := &turn{
		publishErr: publishErr,
		id:         actorID,
		source:     actorType + "/" + actorID,
		now:        now,
		inst:       inst,
		writes:     map[string][]byte{},
		reminders:  map[string]*actor.Reminder{},
	}
	if err := f(t); err != nil {
		return err
	}
	// Commit.
	for k, v := range t.writes {
		if v == nil {
			delete(inst.state, k)
		} else {
			inst.state[k] = v
		}
	}
	for name, r := range t.reminders {
		if r == nil {
			delete(inst.reminders, name)
		} else {
			inst.reminders[name] = *r
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range t.events {
		e.ID = int64(len(h.events) + 1)
		h.events = append(h.events, e)
	}
	return nil
}

func (h *host) actorType(name string) (actor.Type, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	typ, ok := h.types[name]
	return typ, ok
}

func (h *host) instance(actorType, actorID string) *instance {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := actorKey{actorType, actorID}
	inst, ok := h.actors[k]
	if !ok {
		inst = &instance{state: map[string][]byte{}, reminders: map[string]actor.Reminder{}}
		h.actors[k] = inst
	}
	return inst
}

// advance moves the clock that turns see.
func (h *host) advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = h.now.Add(d)
}

func (h *host) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

// reminder returns an actor's registered reminder.
func (h *host) reminder(actorType, actorID, name string) (actor.Reminder, bool) {
	inst := h.instance(actorType, actorID)
	inst.mu.Lock()
	defer inst.mu.Unlock()
	r, ok := inst.reminders[name]
	return r, ok
}

// reminderNames lists an actor's registered reminders, sorted.
func (h *host) reminderNames(actorType, actorID string) []string {
	inst := h.instance(actorType, actorID)
	inst.mu.Lock()
	defer inst.mu.Unlock()
	names := []string{}
	for n := range inst.reminders {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// dropReminder removes a reminder behind the actor's back, as a runtime that
// stores state and reminders apart may lose one in a crash between the two.
func (h *host) dropReminder(actorType, actorID, name string) {
	inst := h.instance(actorType, actorID)
	inst.mu.Lock()
	defer inst.mu.Unlock()
	delete(inst.reminders, name)
}

// setPublishErr makes every later Publish fail with err (nil: succeed).
func (h *host) setPublishErr(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishErr = err
}

// putState stores raw bytes under an actor's key, as a damaged store might hold.
func (h *host) putState(actorType, actorID, key string, b []byte) {
	inst := h.instance(actorType, actorID)
	inst.mu.Lock()
	defer inst.mu.Unlock()
	inst.state[key] = b
}

// turnCount returns how many turns have run, committed or not.
func (h *host) turnCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.turns
}

// state returns the stored JSON under an actor's key, or nil.
func (h *host) state(actorType, actorID, key string) []byte {
	inst := h.instance(actorType, actorID)
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return inst.state[key]
}

// published returns the events committed so far, oldest first.
func (h *host) published() []event.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]event.Event(nil), h.events...)
}

// eventTypes returns the types of the events committed so far.
func (h *host) eventTypes() []string {
	types := []string{}
	for _, e := range h.published() {
		types = append(types, e.Type)
	}
	return types
}

// turn implements actor.Turn over an instance. Writes, reminder changes and events
// wait in the turn until runTurn commits them.
type turn struct {
	id, source string
	now        time.Time
	inst       *instance
	writes     map[string][]byte          // nil value: deleted
	reminders  map[string]*actor.Reminder // nil value: deleted
	events     []event.Event
	publishErr error
}

var _ actor.Turn = (*turn)(nil)

func (t *turn) ActorID() string { return t.id }
func (t *turn) Now() time.Time  { return t.now }

func (t *turn) Get(_ context.Context, key string, v any) (bool, error) {
	b, ok := t.writes[key]
	if !ok {
		b, ok = t.inst.state[key]
	}
	if !ok || b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decode state %s: %w", key, err)
	}
	return true, nil
}

func (t *turn) Set(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode state %s: %w", key, err)
	}
	t.writes[key] = b
	return nil
}

func (t *turn) Delete(key string) { t.writes[key] = nil }

func (t *turn) SetReminder(name string, r actor.Reminder) {
	r.Data = append(json.RawMessage(nil), r.Data...)
	t.reminders[name] = &r
}

func (t *turn) DeleteReminder(name string) { t.reminders[name] = nil }

func (t *turn) Publish(topic, eventType string, data any) error {
	if t.publishErr != nil {
		return t.publishErr
	}
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", eventType, err)
	}
	t.events = append(t.events, event.Event{Topic: topic, Type: eventType, Time: t.now, Source: t.source, Data: b})
	return nil
}
