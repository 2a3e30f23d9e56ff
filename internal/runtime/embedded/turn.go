package embedded

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/errs"
)

// turn implements actor.Turn for one call. It buffers every write until the host
// commits them.
type turn struct {
	actor.State
	host *Host
	key  actorKey
	act  *activation
	now  time.Time

	reminders []reminderWrite
	events    []eventWrite
}

var _ actor.Turn = (*turn)(nil)

func (t *turn) ActorID() string { return t.key.id }
func (t *turn) Now() time.Time  { return t.now }

func (t *turn) SetReminder(name string, r actor.Reminder) {
	t.reminders = append(t.reminders, reminderWrite{
		name:   name,
		due:    r.Due,
		period: max(r.Period, 0),
		data:   r.Data,
		gen:    t.host.sched.nextGen(),
	})
}

func (t *turn) DeleteReminder(name string) {
	t.reminders = append(t.reminders, reminderWrite{name: name, delete: true})
}

func (t *turn) Publish(topic, eventType string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", eventType, err)
	}
	t.events = append(t.events, eventWrite{topic: topic, typ: eventType, time: t.now.UTC(), data: b})
	return nil
}

// change collects the turn's buffered writes, in the order they were made.
func (t *turn) change() *change {
	ch := &change{actorType: t.key.typ, actorID: t.key.id, reminders: t.reminders, events: t.events}
	for _, w := range t.Writes() {
		ch.state = append(ch.state, stateWrite{key: w.Key, value: w.Value})
	}
	return ch
}

func (c *change) empty() bool {
	return len(c.state) == 0 && len(c.reminders) == 0 && len(c.events) == 0
}

// load returns a state key that the activation a of k has not cached. The
// first read of an activation reads all of the actor's keys at once and caches
// them, and from then on a key the cache lacks is absent without a read:
// actors here have a few small keys and their methods read most of them, so
// one query replaces one per key (a new task's actor used to cost two reads
// that found nothing).
//
// The read ignores ctx's cancellation: a read of a local file in WAL mode
// never waits for a writer, and with a cancellable context database/sql and the
// driver each start a goroutine per query to watch it, which under load was
// thousands of goroutines a second.
func (h *Host) load(ctx context.Context, k actorKey, a *activation, key string) ([]byte, error) {
	if a.complete {
		return nil, nil
	}
	rows, err := h.readState.QueryContext(context.WithoutCancel(ctx), k.typ, k.id)
	if err != nil {
		return nil, errs.E(errs.Unavailable, "read state of %s/%s: %v", k.typ, k.id, err)
	}
	defer rows.Close()
	var found []byte
	for rows.Next() {
		var (
			name string
			b    []byte
		)
		if err := rows.Scan(&name, &b); err != nil {
			return nil, errs.E(errs.Unavailable, "read state of %s/%s: %v", k.typ, k.id, err)
		}
		if b == nil {
			b = []byte{} // stored but empty: keep it distinct from "absent"
		}
		if name == key {
			found = b
		}
		// A key the cache holds already was committed by this activation.
		if _, ok := a.cache[name]; !ok {
			a.cache[name] = b
		}
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(errs.Unavailable, "read state of %s/%s: %v", k.typ, k.id, err)
	}
	a.complete = true
	return found, nil
}
