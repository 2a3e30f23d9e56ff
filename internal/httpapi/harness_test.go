package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/chat"
	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/event"
	"github.com/taskagent/taskagent/internal/task"
)

// testWait bounds every wait for something that should happen promptly. Tests
// never sleep: they wait on a condition and fail when this passes first.
const testWait = 10 * time.Second

// testAPI is the API under test, served over real HTTP so that event streams,
// body limits and disconnects behave as they do in production.
type testAPI struct {
	t     *testing.T
	srv   *httptest.Server
	api   *Server
	clock *fakeClock
	logs  *syncBuffer

	mu       sync.Mutex
	inflight int
	changed  chan struct{} // closed and replaced whenever inflight changes
}

// newTestAPI builds the API on in-memory services that apply internal/task's real
// rules and record events like the actors do. It is the one place that decides
// what the API runs on: when the embedded runtime exists, build it here instead and
// every test runs against it. opts adjust the Config before New, for tests that need
// a failing service or short heartbeats.
func newTestAPI(t *testing.T, opts ...func(*Config)) *testAPI {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	log := &memLog{now: clock.Now, changed: make(chan struct{})}
	logs := &syncBuffer{}
	cfg := Config{
		Tasks:  &memTasks{now: clock.Now, log: log, tasks: map[string]task.Task{}},
		Chats:  &memChats{now: clock.Now, log: log, history: map[string][]chat.Entry{}},
		Events: log,
		Now:    clock.Now,
		Logger: slog.New(slog.NewJSONHandler(io.MultiWriter(t.Output(), logs), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	a := &testAPI{t: t, api: New(cfg), clock: clock, logs: logs, changed: make(chan struct{})}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.track(+1)
		defer a.track(-1)
		a.api.ServeHTTP(w, r)
	}))
	// Cleanups run last-in first-out: streams end first, so that Close, which waits
	// for every handler, returns.
	t.Cleanup(a.srv.Close)
	t.Cleanup(a.api.CloseStreams)
	return a
}

func (a *testAPI) track(delta int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inflight += delta
	close(a.changed)
	a.changed = make(chan struct{})
}

// waitIdle waits until no request is being served.
func (a *testAPI) waitIdle(t *testing.T) {
	t.Helper()
	deadline := time.After(testWait)
	for {
		a.mu.Lock()
		n, ch := a.inflight, a.changed
		a.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d requests still running after %v", n, testWait)
		}
	}
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with body (Content-Type application/json unless body is
// empty) and header name/value pairs; an empty value removes the header.
func (a *testAPI) do(method, path, body string, header ...string) response {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, rd)
	if err != nil {
		a.t.Fatalf("new request %s %s: %v", method, path, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	return a.send(req)
}

// contentType returns the header pair for do that sets Content-Type to ct, or none
// for an empty ct, leaving do's default.
func contentType(ct string) []string {
	if ct == "" {
		return nil
	}
	return []string{"Content-Type", ct}
}

func (a *testAPI) send(req *http.Request) response {
	a.t.Helper()
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// decode decodes r's body strictly into a new T, after checking its status.
func decode[T any](t *testing.T, r response, status int) T {
	t.Helper()
	var v T
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, r.body, err)
	}
	return v
}

// wantError checks that r is a JSON error with status, code and field.
func wantError(t *testing.T, r response, status int, code errs.Kind, field string) *errs.Error {
	t.Helper()
	body := decode[errorBody](t, r, status)
	if body.Error == nil {
		t.Fatalf("no error in body %s", r.body)
	}
	if body.Error.Kind != code || body.Error.Field != field {
		t.Fatalf("error code %q field %q, want %q %q (message %q)", body.Error.Kind, body.Error.Field, code, field, body.Error.Message)
	}
	if body.Error.Message == "" {
		t.Fatalf("error without a message: %s", r.body)
	}
	return body.Error
}

// createTask creates a task with title and returns it.
func (a *testAPI) createTask(id, title string) task.Task {
	a.t.Helper()
	body := fmt.Sprintf(`{"task_id": %q, "title": %q, "description": "about %s"}`, id, title, title)
	return decode[task.Task](a.t, a.do("POST", "/tasks", body), http.StatusCreated)
}

// getTask returns the stored task id.
func (a *testAPI) getTask(id string) task.Task {
	a.t.Helper()
	return decode[task.Task](a.t, a.do("GET", "/tasks/"+id, ""), http.StatusOK)
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects log output written from handler goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// records returns the log records written so far, decoded.
func (s *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(s.b.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// memLog is an in-memory EventLog.
type memLog struct {
	now     func() time.Time
	mu      sync.Mutex
	events  []event.Event
	changed chan struct{} // closed and replaced on every publish
}

func (l *memLog) publish(topic, typ, source string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("publish %s: %v", typ, err))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, event.Event{
		ID: int64(len(l.events)) + 1, Topic: topic, Type: typ, Time: l.now(), Source: source, Data: b,
	})
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *memLog) Read(ctx context.Context, topic string, after int64, limit int) ([]event.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []event.Event
	for _, e := range l.events {
		if e.ID > after && (topic == "" || e.Topic == topic) {
			out = append(out, e)
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

func (l *memLog) Wait(ctx context.Context, after int64) error {
	for {
		l.mu.Lock()
		n, ch := int64(len(l.events)), l.changed
		l.mu.Unlock()
		if n > after { // ids are 1..n
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// memTasks is an in-memory TaskService applying internal/task's rules the way
// TaskActor does: one change at a time, nothing stored when a rule refuses.
type memTasks struct {
	now   func() time.Time
	log   *memLog
	mu    sync.Mutex
	tasks map[string]task.Task
}

func (m *memTasks) Create(ctx context.Context, id string, s task.Spec) (actors.CreateResult, error) {
	if err := task.ValidateID("task_id", id); err != nil {
		return actors.CreateResult{}, err
	}
	if err := s.Validate(); err != nil {
		return actors.CreateResult{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tasks[id]; ok {
		if !t.SameSpec(s) {
			return actors.CreateResult{}, errs.E(errs.Conflict, "task %s exists with a different title or description", id)
		}
		return actors.CreateResult{Task: t}, nil
	}
	t := task.New(id, s, m.now())
	m.tasks[id] = t
	m.publish(actors.EventTaskCreated, task.Task{}, t)
	return actors.CreateResult{Task: t, Created: true}, nil
}

func (m *memTasks) Get(ctx context.Context, id string) (task.Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[id]
	if !ok {
		return task.Task{}, errs.E(errs.NotFound, "task %s not found", id)
	}
	return t, nil
}

func (m *memTasks) UpdateStatus(ctx context.Context, id string, s task.Status) (task.Task, error) {
	return m.update(id, actors.EventTaskStatusChanged, func(t *task.Task, now time.Time) (bool, error) {
		return t.SetStatus(s, now)
	})
}

func (m *memTasks) Assign(ctx context.Context, id, assignee string) (task.Task, error) {
	if err := task.ValidateAssignee(assignee); err != nil {
		return task.Task{}, err
	}
	return m.update(id, actors.EventTaskAssigned, func(t *task.Task, now time.Time) (bool, error) {
		return t.Assign(assignee, now)
	})
}

func (m *memTasks) Unassign(ctx context.Context, id, only string) (task.Task, error) {
	return m.update(id, actors.EventTaskUnassigned, func(t *task.Task, now time.Time) (bool, error) {
		return t.Unassign(only, now)
	})
}

func (m *memTasks) SetDeadline(ctx context.Context, id string, deadline time.Time) (task.Task, error) {
	return m.update(id, actors.EventTaskDeadlineSet, func(t *task.Task, now time.Time) (bool, error) {
		return t.SetDeadline(deadline, now)
	})
}

// update applies f to a copy of task id and stores it, and publishes, only when f
// succeeds and changed something.
func (m *memTasks) update(id, eventType string, f func(*task.Task, time.Time) (bool, error)) (task.Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[id]
	if !ok {
		return task.Task{}, errs.E(errs.NotFound, "task %s not found", id)
	}
	before := t
	changed, err := f(&t, m.now())
	if err != nil {
		return task.Task{}, err
	}
	if changed {
		m.tasks[id] = t
		m.publish(eventType, before, t)
	}
	return t, nil
}

// publish records a task event with the data TaskActor publishes.
func (m *memTasks) publish(eventType string, before, after task.Task) {
	e := actors.TaskEvent{EventType: eventType, TaskID: after.ID, Task: after, Timestamp: after.UpdatedAt}
	if eventType != actors.EventTaskCreated && before.Status != after.Status {
		e.PreviousStatus = before.Status
	}
	m.log.publish(event.TopicTasks, eventType, actors.TaskActorType+"/"+after.ID, e)
}

// memChats is an in-memory ChatService with ChatActor's rules: chat.Rules answers,
// chat.Append bounds the history.
type memChats struct {
	now     func() time.Time
	log     *memLog
	mu      sync.Mutex
	history map[string][]chat.Entry
}

func (m *memChats) Send(ctx context.Context, userID, content string) (actors.Exchange, error) {
	if err := chat.ValidateContent(content); err != nil {
		return actors.Exchange{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.history[userID]
	user := chat.Entry{Role: chat.RoleUser, Content: content, Timestamp: m.now()}
	reply, err := chat.Rules{}.Respond(ctx, userID, h, content)
	if err != nil {
		return actors.Exchange{}, err
	}
	assistant := chat.Entry{Role: chat.RoleAssistant, Content: reply, Timestamp: m.now()}
	m.history[userID] = chat.Append(h, 0, user, assistant)
	m.log.publish(event.TopicConversations, actors.EventConversationUpdated, actors.ChatActorType+"/"+userID, actors.ConversationEvent{
		EventType: actors.EventConversationUpdated, UserID: userID,
		UserMessage: &user, AssistantMessage: &assistant, Timestamp: assistant.Timestamp,
	})
	return actors.Exchange{User: user, Assistant: assistant}, nil
}

func (m *memChats) History(ctx context.Context, userID string) ([]chat.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]chat.Entry{}, m.history[userID]...), nil
}

func (m *memChats) Clear(ctx context.Context, userID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.history[userID]) == 0 {
		return nil
	}
	delete(m.history, userID)
	m.log.publish(event.TopicConversations, actors.EventConversationCleared, actors.ChatActorType+"/"+userID, actors.ConversationEvent{
		EventType: actors.EventConversationCleared, UserID: userID, Timestamp: m.now(),
	})
	return nil
}

// sseMsg is one message read from an event stream: an event, or a comment.
type sseMsg struct {
	id, typ, data string
	comment       string
}

// sseStream reads an open event stream in the background.
type sseStream struct {
	msgs   chan sseMsg // closed when the stream ends
	cancel context.CancelFunc
}

// openStream opens GET /events+query as an event stream, with header name/value
// pairs, and checks that the server answered with one.
func (a *testAPI) openStream(t *testing.T, query string, header ...string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", a.srv.URL+"/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatalf("open stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("open stream: status %d, Content-Type %q, body %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &sseStream{msgs: make(chan sseMsg), cancel: cancel}
	go func() {
		defer close(s.msgs)
		defer resp.Body.Close()
		emit := func(m sseMsg) bool {
			select {
			case s.msgs <- m:
				return true
			case <-ctx.Done():
				return false
			}
		}
		var cur sseMsg
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur != (sseMsg{}) && !emit(cur) {
					return
				}
				cur = sseMsg{}
			case strings.HasPrefix(line, ":"):
				if !emit(sseMsg{comment: strings.TrimSpace(line[1:])}) {
					return
				}
			default:
				name, value, _ := strings.Cut(line, ":")
				value = strings.TrimPrefix(value, " ")
				switch name {
				case "id":
					cur.id = value
				case "event":
					cur.typ = value
				case "data":
					cur.data += value
				}
			}
		}
	}()
	t.Cleanup(cancel)
	return s
}

// next returns the next message, comments included.
func (s *sseStream) next(t *testing.T) (sseMsg, bool) {
	t.Helper()
	select {
	case m, ok := <-s.msgs:
		return m, ok
	case <-time.After(testWait):
		t.Fatalf("no message on the stream within %v", testWait)
		return sseMsg{}, false
	}
}

// nextEvent returns the next event, skipping comments, decoded and checked against
// its id and event fields.
func (s *sseStream) nextEvent(t *testing.T) event.Event {
	t.Helper()
	for {
		m, ok := s.next(t)
		if !ok {
			t.Fatal("the stream ended; want an event")
		}
		if m.comment != "" {
			continue
		}
		var e event.Event
		if err := json.Unmarshal([]byte(m.data), &e); err != nil {
			t.Fatalf("event data %q: %v", m.data, err)
		}
		if m.id != fmt.Sprint(e.ID) || m.typ != e.Type {
			t.Fatalf("id %q event %q, but data has id %d type %q", m.id, m.typ, e.ID, e.Type)
		}
		return e
	}
}
