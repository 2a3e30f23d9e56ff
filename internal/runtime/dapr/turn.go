package dapr

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/event"
)

// outboxKey is the actor state key of events committed but not yet published. Dapr
// cannot save actor state and publish in one transaction, so a turn saves its
// events with its state, publishes them after the save, and clears them once
// published; an activation publishes what a previous one left.
const outboxKey = "__outbox"

// outboxEvent is one event waiting in an actor's outbox.
type outboxEvent struct {
	ID    string          `json:"id"`
	Topic string          `json:"topic"`
	Type  string          `json:"type"`
	Time  time.Time       `json:"time"`
	Data  json.RawMessage `json:"data"`
}

// turn implements actor.Turn on Dapr: writes are buffered and committed through
// the sidecar when the method succeeds.
type turn struct {
	actor.State
	host *host
	key  actorKey
	act  *activation
	now  time.Time

	reminders []reminderOp
	events    []outboxEvent
}

type reminderOp struct {
	name   string
	delete bool
	r      actor.Reminder
}

var _ actor.Turn = (*turn)(nil)

func (t *turn) ActorID() string { return t.key.id }
func (t *turn) Now() time.Time  { return t.now }

func (t *turn) SetReminder(name string, r actor.Reminder) {
	t.reminders = append(t.reminders, reminderOp{name: name, r: r})
}

func (t *turn) DeleteReminder(name string) {
	t.reminders = append(t.reminders, reminderOp{name: name, delete: true})
}

// setsReminder reports whether the turn registers reminder name.
func (t *turn) setsReminder(name string) bool {
	for _, op := range t.reminders {
		if op.name == name && !op.delete {
			return true
		}
	}
	return false
}

var eventSeq atomic.Int64

func (t *turn) Publish(topic, eventType string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", eventType, err)
	}
	id := t.key.typ + "/" + t.key.id + "/" + strconv.FormatInt(t.now.UnixNano(), 36) + "-" + strconv.FormatInt(eventSeq.Add(1), 36)
	t.events = append(t.events, outboxEvent{ID: id, Topic: topic, Type: eventType, Time: t.now.UTC(), Data: b})
	return nil
}

// commit makes the turn's effects real, in the order that keeps every crash
// recoverable: reminders the turn registers exist before the state that expects
// them is saved; the state and the new events are saved in one transaction;
// reminders the turn removes go after that save; events are published last, and
// cleared from the outbox once published.
func (h *host) commit(ctx context.Context, t *turn) error {
	k, a := t.key, t.act
	for _, op := range t.reminders {
		if !op.delete {
			if err := h.registerReminder(ctx, k, op.name, op.r); err != nil {
				return err
			}
		}
	}
	var ops []stateOp
	writes := t.Writes()
	for _, w := range writes {
		if w.Value == nil {
			ops = append(ops, stateOp{Operation: "delete", Request: stateOpRequest{Key: w.Key}})
		} else {
			ops = append(ops, stateOp{Operation: "upsert", Request: stateOpRequest{Key: w.Key, Value: w.Value}})
		}
	}
	pending := a.outbox
	if len(t.events) > 0 {
		pending = append(append([]outboxEvent(nil), a.outbox...), t.events...)
		b, err := json.Marshal(pending)
		if err != nil {
			return err
		}
		ops = append(ops, stateOp{Operation: "upsert", Request: stateOpRequest{Key: outboxKey, Value: b}})
	}
	if len(ops) > 0 {
		if err := h.sc.saveState(ctx, k.typ, k.id, ops); err != nil {
			// What is stored is unknown now: daprd may have applied the save
			// and lost only its answer (a caller that gave up cancels the
			// turn). Forget the cache, and read the stored outbox again before
			// the next turn, so that its events are published rather than
			// overwritten by the next turn's outbox.
			clear(a.cache)
			a.outboxLoaded = false
			return err
		}
		for _, w := range writes {
			a.cache[w.Key] = w.Value
		}
		a.outbox = pending
	}
	for _, op := range t.reminders {
		if op.delete {
			if err := h.sc.deleteReminder(ctx, k.typ, k.id, op.name); err != nil {
				// The state is saved; a reminder left behind fires once more and the
				// domain ignores it.
				h.log.Warn("delete reminder", "actor_type", k.typ, "actor_id", k.id, "reminder", op.name, "err", err)
			}
		}
	}
	h.flushOutbox(ctx, k, a)
	return nil
}

// registerReminder registers r with daprd. A one-shot reminder gets the retry
// interval as its period (see reminderEnvelope).
func (h *host) registerReminder(ctx context.Context, k actorKey, name string, r actor.Reminder) error {
	env := reminderEnvelope{Data: r.Data}
	period := r.Period
	if period <= 0 {
		env.Once = true
		period = h.cfg.ReminderRetry
	}
	data, err := json.Marshal(env)
	if err != nil {
		return err
	}
	due := dueTime(r.Due, time.Now(), h.exactDueTimes(ctx))
	return h.sc.setReminder(ctx, k.typ, k.id, name, reminderRequest{DueTime: due, Period: period.String(), Data: data})
}

// How precisely daprd keeps reminder due times; see exactDueTimes.
const (
	dueUnknown int32 = iota
	dueSeconds
	dueExact
)

// exactDueTimes reports whether daprd keeps reminder due times to the
// nanosecond, as it does with reminders in the Scheduler service (the
// SchedulerReminders feature, which deploy/ turns on); with reminders in the
// state store it keeps them to the second. It reads daprd's features once;
// while it cannot tell, it answers false, which fires late but never early
// (see dueTime).
func (h *host) exactDueTimes(ctx context.Context) bool {
	switch h.dueTimes.Load() {
	case dueExact:
		return true
	case dueSeconds:
		return false
	}
	features, err := h.sc.features(ctx)
	if err != nil {
		h.log.Warn("read daprd's features; reminder due times are rounded up to the second", "err", err)
		return false
	}
	v := dueSeconds
	if slices.Contains(features, schedulerRemindersFeature) {
		v = dueExact
	}
	h.dueTimes.Store(v)
	return v == dueExact
}

// dueTime renders a reminder's due time for daprd as an absolute time, so that
// it fires at or after due. Both of Dapr 1.14's reminder stores truncate a
// relative "200ms" to whole seconds and could fire it up to a second early.
// The Scheduler service keeps an absolute time to the nanosecond (exact); the
// state store truncates it to the second, so there it is rounded up to the
// next second and fires up to a second late.
func dueTime(due, now time.Time, exact bool) string {
	if !due.After(now) {
		return "0s"
	}
	if exact {
		return due.UTC().Format(time.RFC3339Nano)
	}
	at := due.UTC().Truncate(time.Second)
	if at.Before(due) {
		at = at.Add(time.Second)
	}
	return at.Format(time.RFC3339)
}

// flushOutbox publishes the actor's pending events in order and clears those
// published from its stored outbox. A failure leaves the rest for the next turn or
// activation.
func (h *host) flushOutbox(ctx context.Context, k actorKey, a *activation) {
	if len(a.outbox) == 0 {
		return
	}
	sent := 0
	for _, e := range a.outbox {
		if err := h.publish(ctx, k, e); err != nil {
			h.log.Warn("publish event; it stays in the outbox", "actor_type", k.typ, "actor_id", k.id, "event", e.Type, "err", err)
			break
		}
		sent++
	}
	rest := a.outbox[sent:]
	op := stateOp{Operation: "delete", Request: stateOpRequest{Key: outboxKey}}
	if len(rest) > 0 {
		b, _ := json.Marshal(rest)
		op = stateOp{Operation: "upsert", Request: stateOpRequest{Key: outboxKey, Value: b}}
	}
	if sent == 0 {
		return
	}
	if err := h.sc.saveState(ctx, k.typ, k.id, []stateOp{op}); err != nil {
		// They were published; the next activation publishes them again, which
		// subscribers deduplicate by event id.
		h.log.Warn("clear outbox", "actor_type", k.typ, "actor_id", k.id, "err", err)
		return
	}
	a.outbox = append([]outboxEvent(nil), rest...)
}

func (h *host) loadOutbox(ctx context.Context, k actorKey, a *activation) error {
	b, err := h.sc.getState(ctx, k.typ, k.id, outboxKey)
	if err != nil {
		return err
	}
	a.outbox = nil
	if b != nil {
		if err := json.Unmarshal(b, &a.outbox); err != nil {
			return fmt.Errorf("decode outbox of %s/%s: %w", k.typ, k.id, err)
		}
	}
	a.outboxLoaded = true
	h.flushOutbox(ctx, k, a)
	return nil
}

// cloudEvent is how events travel through Dapr pub/sub: a CloudEvent whose id is
// the event's own, so that subscribers can drop duplicates.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	Topic           string          `json:"topic,omitempty"`
	PubSubName      string          `json:"pubsubname,omitempty"`
}

func (h *host) publish(ctx context.Context, k actorKey, e outboxEvent) error {
	b, err := json.Marshal(cloudEvent{
		SpecVersion:     "1.0",
		ID:              e.ID,
		Source:          k.typ + "/" + k.id,
		Type:            e.Type,
		Time:            e.Time,
		DataContentType: "application/json",
		Data:            e.Data,
	})
	if err != nil {
		return err
	}
	return h.sc.publish(ctx, PubSub, e.Topic, b)
}

// toEvent converts a received CloudEvent to the API's event shape.
func (c cloudEvent) toEvent(topic string) event.Event {
	return event.Event{Topic: topic, Type: c.Type, Time: c.Time.UTC(), Source: c.Source, Data: c.Data}
}
