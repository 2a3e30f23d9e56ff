package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/event"
)

// allEvents returns the whole log, read through the paging form of GET /events.
func (a *testAPI) allEvents(t *testing.T, query string) []event.Event {
	t.Helper()
	var all []event.Event
	after := int64(0)
	for {
		p := decode[eventPage](t, a.do("GET", fmt.Sprintf("/events?after=%d&limit=2%s", after, query), ""), http.StatusOK)
		if len(p.Events) == 0 {
			if p.NextAfter != after {
				t.Fatalf("empty page moved next_after from %d to %d", after, p.NextAfter)
			}
			return all
		}
		if last := p.Events[len(p.Events)-1].ID; p.NextAfter != last {
			t.Fatalf("next_after %d, want the last id %d", p.NextAfter, last)
		}
		all = append(all, p.Events...)
		after = p.NextAfter
	}
}

// taskIDOf returns the task_id of task event e, after checking that its data is a
// TaskEvent that agrees with its envelope.
func taskIDOf(t *testing.T, e event.Event) string {
	t.Helper()
	return taskEventOf(t, e).TaskID
}

func TestEventsPaging(t *testing.T) {
	a := newTestAPI(t)
	for i := 1; i <= 5; i++ {
		a.createTask(fmt.Sprintf("t-%d", i), "Task")
	}
	a.do("POST", "/chat/alice/messages", `{"content": "hi"}`)

	all := a.allEvents(t, "")
	if len(all) != 6 {
		t.Fatalf("%d events, want 6: %+v", len(all), all)
	}
	for i, e := range all {
		if i > 0 && e.ID <= all[i-1].ID {
			t.Errorf("event %d has id %d after id %d: not in order", i, e.ID, all[i-1].ID)
		}
		if !e.Time.Equal(a.clock.Now()) {
			t.Errorf("event %d at %v, want at the runtime's time %v", i, e.Time, a.clock.Now())
		}
		if i < 5 {
			if d := taskEventOf(t, e); d.EventType != actors.EventTaskCreated || d.TaskID != fmt.Sprintf("t-%d", i+1) {
				t.Errorf("event %d: %s for task %q, want %s for t-%d", i, d.EventType, d.TaskID, actors.EventTaskCreated, i+1)
			}
		}
	}
	if d := conversationEventOf(t, all[5]); d.EventType != actors.EventConversationUpdated || d.UserID != "alice" ||
		d.UserMessage == nil || d.UserMessage.Content != "hi" {
		t.Errorf("last event %+v, want %s for alice's hi", d, actors.EventConversationUpdated)
	}

	// A topic pages through its own events only.
	conv := a.allEvents(t, "&topic="+event.TopicConversations)
	if diff := cmp.Diff(all[5:], conv); diff != "" {
		t.Errorf("conversation events (-want +got):\n%s", diff)
	}

	// Asking for JSON pages from the start without ?after=, 100 at most by default.
	p := decode[eventPage](t, a.do("GET", "/events", "", "Accept", "application/json"), http.StatusOK)
	if diff := cmp.Diff(eventPage{Events: all, NextAfter: all[5].ID}, p); diff != "" {
		t.Errorf("page (-want +got):\n%s", diff)
	}

	// Past the end: an empty list, not null.
	r := a.do("GET", fmt.Sprintf("/events?after=%d", all[5].ID), "")
	if got, want := string(r.body), fmt.Sprintf("{\"events\":[],\"next_after\":%d}\n", all[5].ID); got != want {
		t.Errorf("page past the end %q, want %q", got, want)
	}
}

func TestEventsBadQueries(t *testing.T) {
	a := newTestAPI(t)
	cases := []struct {
		query, accept, lastEventID string
		field                      string
	}{
		{"?after=0&limit=0", "", "", "limit"},
		{"?after=0&limit=1001", "", "", "limit"},
		{"?after=0&limit=ten", "", "", "limit"},
		{"?after=0&limit=", "", "", "limit"},
		{"?after=-1", "", "", "after"},
		{"?after=x", "", "", "after"},
		{"?after=1.5", "", "", "after"},
		{"?after=0&topic=bad%20topic", "", "", "topic"},
		{"?limit=0", "text/event-stream", "", "limit"},
		{"", "text/event-stream", "abc", "Last-Event-ID"},
		{"", "text/event-stream", "-3", "Last-Event-ID"},
	}
	for _, c := range cases {
		t.Run(c.query+" "+c.lastEventID, func(t *testing.T) {
			var h []string
			if c.accept != "" {
				h = append(h, "Accept", c.accept)
			}
			if c.lastEventID != "" {
				h = append(h, "Last-Event-ID", c.lastEventID)
			}
			wantError(t, a.do("GET", "/events"+c.query, "", h...), http.StatusBadRequest, errs.Invalid, c.field)
		})
	}
}

func TestEventsStream(t *testing.T) {
	a := newTestAPI(t)
	a.createTask("t-1", "One")
	a.createTask("t-2", "Two")

	// A new stream starts with what is already in the log.
	s := a.openStream(t, "")
	first := []event.Event{s.nextEvent(t), s.nextEvent(t)}
	if diff := cmp.Diff(a.allEvents(t, ""), first); diff != "" {
		t.Fatalf("first events on the stream (-log +stream):\n%s", diff)
	}
	// Then new events as they are published.
	a.createTask("t-3", "Three")
	e3 := s.nextEvent(t)
	if taskIDOf(t, e3) != "t-3" || e3.ID <= first[1].ID {
		t.Fatalf("live event %d for %q, want one after %d for t-3", e3.ID, taskIDOf(t, e3), first[1].ID)
	}
	s.cancel()

	// Published while nobody listens.
	a.createTask("t-4", "Four")

	// Reconnecting with Last-Event-ID resumes just after it.
	s = a.openStream(t, "", "Last-Event-ID", fmt.Sprint(e3.ID))
	e4 := s.nextEvent(t)
	if taskIDOf(t, e4) != "t-4" {
		t.Fatalf("first event after reconnecting is for %q, want t-4", taskIDOf(t, e4))
	}
	a.createTask("t-5", "Five")
	e5 := s.nextEvent(t)
	if taskIDOf(t, e5) != "t-5" {
		t.Fatalf("live event after reconnecting is for %q, want t-5", taskIDOf(t, e5))
	}
	s.cancel()

	// ?after= resumes a stream too; Last-Event-ID, set by a reconnecting
	// EventSource that keeps its URL, wins over it.
	s = a.openStream(t, fmt.Sprintf("?after=%d", first[1].ID))
	if got := s.nextEvent(t); got.ID != e3.ID {
		t.Errorf("stream ?after=%d starts at %d, want %d", first[1].ID, got.ID, e3.ID)
	}
	s.cancel()
	s = a.openStream(t, fmt.Sprintf("?after=%d", first[1].ID), "Last-Event-ID", fmt.Sprint(e4.ID))
	if got := s.nextEvent(t); got.ID != e5.ID {
		t.Errorf("stream with both starts at %d, want %d", got.ID, e5.ID)
	}
	s.cancel()
}

// TestEventsStreamCatchUp streams a backlog longer than one read from the log.
func TestEventsStreamCatchUp(t *testing.T) {
	a := newTestAPI(t)
	const n = 2*streamBatch + 7
	for i := range n {
		a.createTask(fmt.Sprintf("t-%d", i), "Task")
	}
	s := a.openStream(t, "")
	for i := range n {
		if got := taskIDOf(t, s.nextEvent(t)); got != fmt.Sprintf("t-%d", i) {
			t.Fatalf("event %d is for %q, want t-%d", i, got, i)
		}
	}
	a.createTask("last", "Task")
	if got := taskIDOf(t, s.nextEvent(t)); got != "last" {
		t.Fatalf("live event after the backlog is for %q, want last", got)
	}
}

func TestEventsStreamTopic(t *testing.T) {
	a := newTestAPI(t)
	s := a.openStream(t, "?topic="+event.TopicTasks)
	// Many events of another topic, then one of ours: the stream skips the others
	// and does not stall behind them.
	for range streamBatch + 1 {
		a.do("POST", "/chat/alice/messages", `{"content": "hi"}`)
	}
	a.createTask("t-1", "One")
	if e := s.nextEvent(t); e.Topic != event.TopicTasks || taskIDOf(t, e) != "t-1" {
		t.Fatalf("event on %q for %q, want %s for t-1", e.Topic, taskIDOf(t, e), event.TopicTasks)
	}
	a.do("POST", "/chat/alice/messages", `{"content": "hi"}`)
	a.createTask("t-2", "Two")
	if e := s.nextEvent(t); taskIDOf(t, e) != "t-2" {
		t.Fatalf("event for %q, want t-2", taskIDOf(t, e))
	}
}

func TestEventsStreamHeartbeat(t *testing.T) {
	a := newTestAPI(t, func(c *Config) { c.HeartbeatInterval = 10 * time.Millisecond })
	s := a.openStream(t, "")
	for range 2 {
		m, ok := s.next(t)
		if !ok || m.comment != "heartbeat" {
			t.Fatalf("got %+v (open %v), want a heartbeat comment", m, ok)
		}
	}
	// Events still arrive between heartbeats.
	a.createTask("t-1", "One")
	if got := taskIDOf(t, s.nextEvent(t)); got != "t-1" {
		t.Fatalf("event for %q, want t-1", got)
	}
}

// TestEventsStreamEnds checks both ways a stream ends, without which
// http.Server.Shutdown would wait for it forever.
func TestEventsStreamEnds(t *testing.T) {
	t.Run("client goes away", func(t *testing.T) {
		a := newTestAPI(t)
		s := a.openStream(t, "")
		s.cancel()
		a.waitIdle(t)
	})
	t.Run("HEAD", func(t *testing.T) {
		a := newTestAPI(t)
		r := a.do("HEAD", "/events", "")
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/event-stream" {
			t.Errorf("HEAD /events: status %d Content-Type %q, want 200 text/event-stream", r.status, r.header.Get("Content-Type"))
		}
		a.waitIdle(t)
	})
	t.Run("server closes streams", func(t *testing.T) {
		a := newTestAPI(t)
		s := a.openStream(t, "")
		a.api.CloseStreams()
		for {
			m, ok := s.next(t)
			if !ok {
				break
			}
			if m.comment == "" {
				t.Fatalf("unexpected event %+v", m)
			}
		}
		a.waitIdle(t)
		// New streams are refused; the rest of the API still works.
		wantError(t, a.do("GET", "/events", "", "Accept", "text/event-stream"), http.StatusServiceUnavailable, errs.Unavailable, "")
		decode[eventPage](t, a.do("GET", "/events?after=0", ""), http.StatusOK)
	})
}

// TestEventsStreamLogFailure checks that a log that cannot be read is reported
// with a status, before the stream begins.
func TestEventsStreamLogFailure(t *testing.T) {
	a := newTestAPI(t, func(c *Config) { c.Events = brokenLog{} })
	wantError(t, a.do("GET", "/events", ""), http.StatusServiceUnavailable, errs.Unavailable, "")
	wantError(t, a.do("GET", "/events?after=0", ""), http.StatusServiceUnavailable, errs.Unavailable, "")
}

type brokenLog struct{}

func (brokenLog) Read(context.Context, string, int64, int) ([]event.Event, error) {
	return nil, errs.E(errs.Unavailable, "the event log is closed")
}

func (brokenLog) Wait(context.Context, int64) error {
	return errs.E(errs.Unavailable, "the event log is closed")
}
