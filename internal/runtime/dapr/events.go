package dapr

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/event"
)

// subscription is one entry of GET /dapr/subscribe.
type subscription struct {
	PubSubName string `json:"pubsubname"`
	Topic      string `json:"topic"`
	Route      string `json:"route"`
}

// topics the app subscribes to, so that GET /events works on Dapr too.
var topics = []string{event.TopicTasks, event.TopicConversations}

func (l *EventLog) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /dapr/subscribe", func(w http.ResponseWriter, r *http.Request) {
		subs := make([]subscription, 0, len(topics))
		for _, t := range topics {
			subs = append(subs, subscription{PubSubName: PubSub, Topic: t, Route: "/dapr/events/" + t})
		}
		writeJSON(w, http.StatusOK, subs)
	})
	mux.HandleFunc("POST /dapr/events/{topic}", func(w http.ResponseWriter, r *http.Request) {
		var ce cloudEvent
		if err := json.NewDecoder(io.LimitReader(r.Body, maxActorBody)).Decode(&ce); err != nil {
			// Undecodable: retrying will not help, so tell Dapr to drop it.
			writeJSON(w, http.StatusOK, map[string]string{"status": "DROP"})
			return
		}
		l.append(ce.ID, ce.toEvent(r.PathValue("topic")))
		writeJSON(w, http.StatusOK, map[string]string{"status": "SUCCESS"})
	})
}

// EventLog keeps the events this replica received from Dapr pub/sub, newest
// last, up to a bound, and serves them like the embedded log: at least once, in
// the order received, resumable by id. Ids are this replica's own sequence. Every
// replica subscribes with its own consumer id and so sees every event; an event
// delivered twice (its id seen before) is kept once.
type EventLog struct {
	max int

	mu      sync.Mutex
	events  []event.Event // oldest first
	lastID  int64
	seen    map[string]struct{}
	seenQ   []string
	changed chan struct{}
	closed  bool
}

func newEventLog(max int) *EventLog {
	return &EventLog{max: max, seen: make(map[string]struct{}), changed: make(chan struct{})}
}

func (l *EventLog) append(id string, e event.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id != "" {
		if _, dup := l.seen[id]; dup {
			return
		}
		l.seen[id] = struct{}{}
		l.seenQ = append(l.seenQ, id)
		if len(l.seenQ) > 2*l.max {
			for _, old := range l.seenQ[:l.max] {
				delete(l.seen, old)
			}
			l.seenQ = append([]string(nil), l.seenQ[l.max:]...)
		}
	}
	l.lastID++
	e.ID = l.lastID
	l.events = append(l.events, e)
	if len(l.events) > l.max {
		l.events = append([]event.Event(nil), l.events[len(l.events)-l.max:]...)
	}
	if !l.closed {
		close(l.changed)
		l.changed = make(chan struct{})
	}
}

// Read returns up to limit events with an id greater than after on topic ("" for
// every topic), oldest first.
func (l *EventLog) Read(ctx context.Context, topic string, after int64, limit int) ([]event.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errs.E(errs.Unavailable, "event log is closed")
	}
	// Ids grow along the slice: start at the first one after after.
	i, _ := slices.BinarySearchFunc(l.events, after+1, func(e event.Event, id int64) int { return cmp.Compare(e.ID, id) })
	var out []event.Event
	for _, e := range l.events[i:] {
		if len(out) == limit {
			break
		}
		if topic == "" || e.Topic == topic {
			out = append(out, e)
		}
	}
	return out, nil
}

// Wait blocks until an event with an id greater than after arrives or ctx is done.
func (l *EventLog) Wait(ctx context.Context, after int64) error {
	for {
		l.mu.Lock()
		last, ch, closed := l.lastID, l.changed, l.closed
		l.mu.Unlock()
		if last > after {
			return nil
		}
		if closed {
			return errs.E(errs.Unavailable, "event log is closed")
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *EventLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.changed)
	}
}
