package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
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

// load reads one state key from the store; a missing key is a nil value.
//
// The read ignores ctx's cancellation: a point read of a local file in WAL mode
// never waits for a writer, and with a cancellable context database/sql and the
// driver each start a goroutine per query to watch it, which under load was
// thousands of goroutines a second.
func (h *Host) load(ctx context.Context, k actorKey, key string) ([]byte, error) {
	var b []byte
	err := h.readState.QueryRowContext(context.WithoutCancel(ctx), k.typ, k.id, key).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, errs.E(errs.Unavailable, "read state %q of %s/%s: %v", key, k.typ, k.id, err)
	}
	if b == nil {
		b = []byte{} // stored but empty: keep it distinct from "absent"
	}
	return b, nil
}
