package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// wireEvent is an event as GET /events sends it.
type wireEvent struct {
	ID    int64           `json:"id"`
	Topic string          `json:"topic"`
	Type  string          `json:"type"`
	Time  time.Time       `json:"time"`
	Data  json.RawMessage `json:"data"`
}

// eventPage is the JSON form of GET /events.
type eventPage struct {
	Events    []wireEvent `json:"events"`
	NextAfter int64       `json:"next_after"`
}

// Event sources.
const (
	sourceSSE   = "sse"
	sourcePages = "pages"
)

// pageLimit is the largest page GET /events serves.
const pageLimit = 1000

// page reads the events after cursor, at most limit of them, every topic.
func (r *runner) page(ctx context.Context, after int64, limit int) ([]wireEvent, error) {
	c := r.do(ctx, http.MethodGet, fmt.Sprintf("/events?after=%d&limit=%d", after, limit), "GET /events", nil, 0)
	if c.err != nil {
		return nil, c.err
	}
	if c.status != http.StatusOK {
		return nil, fmt.Errorf("GET /events: %d %s", c.status, trim(string(c.body), 200))
	}
	var p eventPage
	if err := json.Unmarshal(c.body, &p); err != nil {
		return nil, fmt.Errorf("GET /events: %w", err)
	}
	return p.Events, nil
}

// head returns the id of the newest event in the log (0 when it is empty), so
// that the run reads only the events after it. Reading from 0 would replay every
// earlier run; the log has no "latest" query, so this searches on ?after=, which
// answers the first event after any id: O(log n) small requests.
func (r *runner) head(ctx context.Context) (int64, error) {
	first := func(after int64) (int64, bool, error) {
		evs, err := r.page(ctx, after, 1)
		if err != nil || len(evs) == 0 {
			return 0, false, err
		}
		return evs[0].ID, true, nil
	}
	lo, ok, err := first(0)
	if err != nil || !ok {
		return 0, err
	}
	// lo is an existing id; grow hi until no event follows it.
	hi := max(2*lo, 1024)
	for {
		id, ok, err := first(hi)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		lo, hi = id, 4*id
	}
	// Invariant: event lo exists; none follows hi.
	for lo < hi {
		mid := lo + (hi-lo)/2
		id, ok, err := first(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = id
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// readEvents follows the event log from after until ctx is done, handing each
// event to r.event, and returns the id of the last one it handled. It streams
// Server-Sent Events (resuming with Last-Event-ID after a dropped connection) and
// falls back to polling pages when the server does not stream.
func (r *runner) readEvents(ctx context.Context, after int64) int64 {
	cursor := after
	for ctx.Err() == nil {
		if r.eventSource() == sourcePages {
			cursor = r.pollPages(ctx, cursor)
			continue
		}
		next, streams := r.stream(ctx, cursor)
		cursor = next
		if !streams {
			r.setEventSource(sourcePages)
			continue
		}
		if ctx.Err() == nil {
			sleep(ctx, 100*time.Millisecond) // reconnect after a dropped stream
		}
	}
	return cursor
}

// stream reads one SSE connection until it ends. streams is false when the server
// answered with something other than an event stream.
func (r *runner) stream(ctx context.Context, cursor int64) (last int64, streams bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.URL+"/events", nil)
	if err != nil {
		return cursor, false
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", strconv.FormatInt(cursor, 10))
	res, err := r.client.Do(req)
	if err != nil {
		r.failed(ctx, "GET /events (stream)", "error", err)
		return cursor, true
	}
	defer res.Body.Close()
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); res.StatusCode != http.StatusOK || mt != "text/event-stream" {
		if res.StatusCode >= 400 {
			r.failed(ctx, "GET /events (stream)", strconv.Itoa(res.StatusCode), fmt.Errorf("content type %q", res.Header.Get("Content-Type")))
		}
		return cursor, false
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			// A blank line ends an event. Its data is the whole event envelope,
			// id included, so the id: and event: lines add nothing to read.
			if len(data) > 0 {
				var e wireEvent
				if err := json.Unmarshal(data, &e); err == nil {
					r.event(e, time.Now())
					cursor = e.ID
				}
				data = data[:0]
			}
			continue
		}
		field, value, _ := strings.Cut(string(line), ":")
		if field == "data" {
			data = append(data, strings.TrimPrefix(value, " ")...)
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		r.failed(ctx, "GET /events (stream)", "error", err)
	}
	return cursor, true
}

// pollPages reads pages of events after cursor until ctx is done, waiting briefly
// whenever it has caught up.
func (r *runner) pollPages(ctx context.Context, cursor int64) int64 {
	for ctx.Err() == nil {
		evs, err := r.page(ctx, cursor, pageLimit)
		if err != nil {
			sleep(ctx, 250*time.Millisecond)
			continue
		}
		now := time.Now()
		for _, e := range evs {
			r.event(e, now)
			cursor = e.ID
		}
		if len(evs) < pageLimit {
			sleep(ctx, 100*time.Millisecond)
		}
	}
	return cursor
}

// drain reads every event after cursor that the log holds now.
func (r *runner) drain(ctx context.Context, cursor int64) error {
	for {
		evs, err := r.page(ctx, cursor, pageLimit)
		if err != nil {
			return err
		}
		now := time.Now()
		for _, e := range evs {
			r.event(e, now)
			cursor = e.ID
		}
		if len(evs) < pageLimit {
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
