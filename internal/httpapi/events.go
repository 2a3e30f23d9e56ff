package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/event"
	"github.com/taskagent/taskagent/internal/task"
)

// Limits of GET /events.
const (
	defaultPageLimit = 100
	maxPageLimit     = 1000
	// streamBatch is how many events a stream reads from the log at a time: enough
	// to catch up quickly, small enough that one read never holds much memory.
	streamBatch = 100
)

// eventPage is the body of GET /events when it pages. NextAfter is what to pass as
// ?after= for the following page; it stays put when there was nothing new.
type eventPage struct {
	Events    []event.Event `json:"events"`
	NextAfter int64         `json:"next_after"`
}

// events serves GET /events in one of two forms, both reading the same log: a
// Server-Sent Events stream, or pages of JSON for clients that poll.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	topic := q.Get("topic")
	if topic != "" {
		// Topics are names like ids; checking them keeps junk out of the log reader.
		if err := task.ValidateID("topic", topic); err != nil {
			return err
		}
	}
	limit := defaultPageLimit
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > maxPageLimit {
			return errs.Field("limit", "must be an integer from 1 to %d", maxPageLimit)
		}
		limit = n
	}
	var after int64
	if q.Has("after") {
		var err error
		if after, err = parseCursor("after", q.Get("after")); err != nil {
			return err
		}
	}
	if !wantsStream(r) {
		return s.page(w, r, topic, after, limit)
	}
	// A reconnecting EventSource repeats its original URL, ?after= included, and
	// adds Last-Event-ID: the header is the newer position, so it wins.
	if h := r.Header.Get("Last-Event-ID"); h != "" {
		var err error
		if after, err = parseCursor("Last-Event-ID", h); err != nil {
			return err
		}
	}
	return s.stream(w, r, topic, after)
}

// wantsStream chooses the form of GET /events. A client that accepts
// text/event-stream streams (EventSource always says so), even with ?after=. One
// that asks for JSON, or passes ?after= without asking for a stream, gets a page. A
// client that says nothing streams: that is the endpoint's main use.
func wantsStream(r *http.Request) bool {
	asksJSON := false
	for _, part := range strings.Split(strings.Join(r.Header.Values("Accept"), ","), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/event-stream":
			return true
		case "application/json":
			asksJSON = true
		}
	}
	return !asksJSON && !r.URL.Query().Has("after")
}

func parseCursor(field, v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errs.Field(field, "must be an event id: a non-negative integer")
	}
	return n, nil
}

func (s *Server) page(w http.ResponseWriter, r *http.Request, topic string, after int64, limit int) error {
	evs, err := s.cfg.Events.Read(r.Context(), topic, after, limit)
	if err != nil {
		return err
	}
	next := after
	if len(evs) > 0 {
		next = evs[len(evs)-1].ID
	}
	if evs == nil {
		evs = []event.Event{} // "events": [] rather than null, for clients that iterate
	}
	s.writeJSON(w, http.StatusOK, eventPage{Events: evs, NextAfter: next})
	return nil
}

// stream sends the events after the given id, then every new one as it is
// published, until the client goes away or CloseStreams is called. Errors after
// the response has begun cannot change its status: they are logged and end the
// stream, and the client resumes with Last-Event-ID.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, topic string, after int64) error {
	select {
	case <-s.closing:
		return errs.E(errs.Unavailable, "the server is shutting down")
	default:
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()

	// Read the first batch before answering, so that a log that cannot be read gets
	// a real error status instead of an empty stream.
	batch, err := s.cfg.Events.Read(ctx, "", after, streamBatch)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	// A stream outlives any http.Server WriteTimeout meant for ordinary responses.
	// ErrNotSupported only means there is no deadline to lift.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise hold events back
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil // the headers are the whole answer; do not hold the connection
	}
	if err := rc.Flush(); err != nil {
		s.log.DebugContext(ctx, "event stream: cannot flush", "err", err)
		return nil
	}
	if err := s.pump(ctx, w, rc, topic, after, batch); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "event stream ended", "err", err)
	}
	return nil
}

// pump writes batch and then every later event to the stream. It reads every topic
// and filters here, because EventLog.Wait wakes for an event on any topic: reading
// only the wanted topic would leave the cursor behind events of other topics, and
// Wait would then return at once, forever.
func (s *Server) pump(ctx context.Context, w http.ResponseWriter, rc *http.ResponseController, topic string, cursor int64, batch []event.Event) error {
	lastWrite := time.Now() // real time, not cfg.Now: heartbeats are about the connection
	send := func(msg []byte) error {
		if _, err := w.Write(msg); err != nil {
			return err
		}
		lastWrite = time.Now()
		return rc.Flush()
	}
	for {
		// A batch goes out with one flush: under load a flush per event was a
		// system call per event.
		var buf []byte
		for _, e := range batch {
			cursor = e.ID
			if topic != "" && e.Topic != topic {
				continue
			}
			var err error
			if buf, err = appendSSE(buf, e); err != nil {
				// Skipping is the lesser harm: ending the stream would make the client
				// resume at this same event, forever.
				s.log.ErrorContext(ctx, "event stream: encode event", "id", e.ID, "err", err)
			}
		}
		if len(buf) > 0 {
			if err := send(buf); err != nil {
				return err
			}
		}
		if len(batch) < streamBatch {
			// Caught up: wait for a newer event, breaking the silence with a comment
			// whenever it lasts a heartbeat interval.
			for {
				idle := s.cfg.HeartbeatInterval - time.Since(lastWrite)
				if idle <= 0 {
					if err := send([]byte(": heartbeat\n\n")); err != nil {
						return err
					}
					continue
				}
				wctx, wcancel := context.WithTimeout(ctx, idle)
				err := s.cfg.Events.Wait(wctx, cursor)
				wcancel()
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err == nil {
					break
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					return fmt.Errorf("wait for events after %d: %w", cursor, err)
				}
			}
		}
		var err error
		if batch, err = s.cfg.Events.Read(ctx, "", cursor, streamBatch); err != nil {
			return fmt.Errorf("read events after %d: %w", cursor, err)
		}
	}
}

// appendSSE appends e to dst as one Server-Sent Event. json.Marshal never emits
// a line break, so the data fits on its one line; the type comes from code, but
// a line break in it would forge fields, so any is dropped. On error dst is
// returned as it was.
func appendSSE(dst []byte, e event.Event) ([]byte, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return dst, err
	}
	dst = append(dst, "id: "...)
	dst = strconv.AppendInt(dst, e.ID, 10)
	if typ := lineBreaks.Replace(e.Type); typ != "" {
		dst = append(dst, "\nevent: "...)
		dst = append(dst, typ...)
	}
	dst = append(dst, "\ndata: "...)
	dst = append(dst, data...)
	return append(dst, "\n\n"...), nil
}

// lineBreaks removes the characters that would end an SSE field early.
var lineBreaks = strings.NewReplacer("\r", "", "\n", "")
