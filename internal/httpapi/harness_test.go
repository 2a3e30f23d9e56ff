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

	dtask "github.com/microsoft/durabletask-go/task"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/chat"
	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/event"
	"github.com/taskagent/taskagent/internal/notify"
	"github.com/taskagent/taskagent/internal/runtime/embedded"
	"github.com/taskagent/taskagent/internal/task"
	"github.com/taskagent/taskagent/internal/workflow"
)

// testWait bounds every wait for something that should happen promptly. Tests
// never sleep: they wait on a condition and fail when this passes first.
const testWait = 10 * time.Second

// testAPI is the API under test, served over real HTTP so that event streams,
// body limits and disconnects behave as they do in production, on the embedded
// runtime with the real actors, as cmd/taskagent runs it.
type testAPI struct {
	t     *testing.T
	srv   *httptest.Server
	api   *Server
	host  *embedded.Host
	clock *fakeClock
	logs  *syncBuffer // the API's log only, not the runtime's

	// engine and notifier serve the workflow routes; nil unless newWorkflowAPI
	// made the API.
	engine   *embedded.WorkflowEngine
	notifier *notify.Service

	mu       sync.Mutex
	inflight int
	changed  chan struct{} // closed and replaced whenever inflight changes
}

// newTestAPI builds the API as cmd/taskagent does: on an embedded runtime in a
// temporary directory hosting the real TaskActor and ChatActor, whose event log
// GET /events reads. The runtime and the API share a fake clock, so deadlines are
// exact and a test moves time on when it wants a deadline to pass. opts adjust the
// Config before New, for tests that need a failing service or short heartbeats.
// The workflow routes are left out; newWorkflowAPI adds them.
func newTestAPI(t *testing.T, opts ...func(*Config)) *testAPI {
	t.Helper()
	return startTestAPI(t, nil, opts)
}

// workflowOptions configure the workflow engine and notifier of newWorkflowAPI.
type workflowOptions struct {
	// failAssignees are the notifier's injected failures: every notification to
	// one of them fails as a transient error.
	failAssignees []string
	// failureRate makes that share of all notifications fail, as a flaky
	// notification service would.
	failureRate float64
	// backoff is the notification retry policy's first wait (the second is twice
	// as long); 20ms when zero, so that a failing notification fails fast.
	backoff time.Duration
	// hold, when not nil, makes every notification attempt wait until it is
	// closed, so that a test can act on a workflow that is certainly running.
	hold <-chan struct{}
}

// newWorkflowAPI is newTestAPI with the workflow routes on the real workflow
// engine, wired as cmd/taskagent wires it: TaskProcessingWorkflow in the
// embedded engine over the same data directory, its activities calling the
// runtime's TaskActors and the log notifier (behind fault injection and the
// circuit breaker), GET /notifier on that notifier and GET /stats with the
// runtime's and the engine's figures.
//
// The engine's timers and clock are real: a workflow sets its task's deadline
// as an absolute time from the start of the orchestration, and the TaskActor
// refuses one that is not after its own (fake) now. The fake clock therefore
// starts at the real time here, instead of a fixed date that every deadline the
// workflow sets would have to fall after (and within task.MaxDeadline of), and
// then stays put as it does for newTestAPI.
func newWorkflowAPI(t *testing.T, o workflowOptions, opts ...func(*Config)) *testAPI {
	t.Helper()
	return startTestAPI(t, &o, opts)
}

func startTestAPI(t *testing.T, wf *workflowOptions, opts []func(*Config)) *testAPI {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	if wf != nil {
		clock.now = time.Now().UTC().Truncate(time.Second)
	}
	// The runtime logs apart from the API, so that tests of what the API logs
	// count only its records.
	logs, runtimeLogs := &syncBuffer{}, &syncBuffer{}
	dir := t.TempDir()
	host, err := embedded.Open(t.Context(), dir,
		[]actor.Type{actors.TaskActor(), actors.ChatActor(chat.Rules{}, 0)},
		embedded.Options{Now: clock.Now, Logger: testLogger(t, runtimeLogs).With("component", "runtime")})
	if err != nil {
		t.Fatalf("open runtime: %v", err)
	}
	// Cleanups run last-in first-out, so this one, registered first, runs after
	// the server has closed (and the workflow engine has stopped): no handler or
	// activity is using the runtime any more.
	t.Cleanup(func() {
		if err := host.Close(); err != nil {
			t.Errorf("close runtime: %v", err)
		}
		wantNoErrors(t, "the runtime", runtimeLogs)
	})
	cfg := Config{
		Tasks:  actors.Tasks{Invoker: host},
		Chats:  actors.Chats{Invoker: host},
		Events: host.Events(),
		Ready:  host.Ready,
		Now:    clock.Now,
		Logger: testLogger(t, logs),
	}
	a := &testAPI{t: t, host: host, clock: clock, logs: logs, changed: make(chan struct{})}
	if wf != nil {
		a.startWorkflows(t, dir, *wf, &cfg)
	}
	for _, o := range opts {
		o(&cfg)
	}
	a.api = New(cfg)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.track(+1)
		defer a.track(-1)
		a.api.ServeHTTP(w, r)
	}))
	// Streams end first, so that Close, which waits for every handler, returns.
	t.Cleanup(a.srv.Close)
	t.Cleanup(a.api.CloseStreams)
	return a
}

// startWorkflows starts the workflow engine in dir over a's runtime and puts it,
// the notifier and the stats into cfg.
func (a *testAPI) startWorkflows(t *testing.T, dir string, o workflowOptions, cfg *Config) {
	t.Helper()
	wfLogs := &syncBuffer{}
	log := testLogger(t, wfLogs)
	n, err := notify.New(notify.Config{FailAssignees: o.failAssignees, FailureRate: o.failureRate}, log.With("component", "notify"))
	if err != nil {
		t.Fatalf("notifier: %v", err)
	}
	var notifier notify.Notifier = n
	if o.hold != nil {
		notifier = heldNotifier{Notifier: n, hold: o.hold}
	}
	reg := dtask.NewTaskRegistry()
	wlog := log.With("component", "workflow")
	acts := workflow.Activities{Tasks: actors.Tasks{Invoker: a.host}, Notifier: notifier, Log: wlog}
	if err := workflow.Register(reg, acts, wlog); err != nil {
		t.Fatalf("register workflow: %v", err)
	}
	// Not t.Context(): that ends before the cleanups run, and the engine must
	// stop in its own cleanup, after the server and before the runtime.
	engine, err := embedded.StartWorkflows(context.Background(), dir, reg, 16, log.With("component", "workflow-engine"))
	if err != nil {
		t.Fatalf("start workflow engine: %v", err)
	}
	// Registered after the runtime's cleanup and before the server's, so it runs
	// between them: no request reaches the engine any more, and no activity calls
	// the runtime once it has closed.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		if err := engine.Close(ctx); err != nil {
			t.Errorf("close workflow engine: %v", err)
		}
		wantNoErrors(t, "the workflow engine", wfLogs)
	})
	policy := workflow.DefaultNotifyPolicy()
	policy.FirstInterval = workflow.Duration(20 * time.Millisecond)
	if o.backoff > 0 {
		policy.FirstInterval = workflow.Duration(o.backoff)
	}
	cfg.Workflows = workflow.Service{Engine: engine, Notify: policy}
	cfg.Notifier = n
	cfg.Stats = func() any {
		return map[string]any{"name": "embedded", "actors": a.host.Stats(), "workflows": engine.Backend().Stats()}
	}
	a.engine, a.notifier = engine, n
}

// heldNotifier makes each notification wait until hold is closed, or its attempt
// times out, before the real notifier sends it.
type heldNotifier struct {
	notify.Notifier
	hold <-chan struct{}
}

func (h heldNotifier) Notify(ctx context.Context, n notify.Notification) error {
	select {
	case <-h.hold:
		return h.Notifier.Notify(ctx, n)
	case <-ctx.Done():
		return errs.E(errs.Unavailable, "notification held until the attempt ended: %v", ctx.Err())
	}
}

// wantNoErrors fails t for every record at level ERROR in logs, written by who.
func wantNoErrors(t *testing.T, who string, logs *syncBuffer) {
	t.Helper()
	for _, rec := range logs.records(t) {
		if rec["level"] == "ERROR" {
			t.Errorf("%s logged an error: %v", who, rec)
		}
	}
}

// testLogger logs JSON at every level to the test's output and to buf.
func testLogger(t *testing.T, buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.MultiWriter(t.Output(), buf), &slog.HandlerOptions{Level: slog.LevelDebug}))
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

// eventsAfter returns every event in the runtime's log after id, read from the log
// itself so that checks of what was published do not depend on GET /events.
func (a *testAPI) eventsAfter(t *testing.T, after int64) []event.Event {
	t.Helper()
	evs, err := a.host.Events().Read(t.Context(), "", after, 10_000)
	if err != nil {
		t.Fatalf("read events after %d: %v", after, err)
	}
	return evs
}

// lastEventID returns the id of the newest event in the runtime's log.
func (a *testAPI) lastEventID() int64 { return a.host.Events().Last() }

// wantNoEvents checks that nothing was published after id.
func (a *testAPI) wantNoEvents(t *testing.T, after int64) {
	t.Helper()
	for _, e := range a.eventsAfter(t, after) {
		t.Errorf("unexpected event %d %s from %s: %s", e.ID, e.Type, e.Source, e.Data)
	}
}

// strictUnmarshal decodes b into v, refusing fields v does not have.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// taskEventOf decodes the data of task event e and checks that it agrees with the
// envelope: topic, type, the actor that published it and the time.
func taskEventOf(t *testing.T, e event.Event) actors.TaskEvent {
	t.Helper()
	var d actors.TaskEvent
	if err := strictUnmarshal(e.Data, &d); err != nil {
		t.Fatalf("event %d data %s: %v", e.ID, e.Data, err)
	}
	if e.Topic != event.TopicTasks || e.Type != d.EventType || e.Source != actors.TaskActorType+"/"+d.TaskID ||
		d.Task.ID != d.TaskID || !e.Time.Equal(d.Timestamp) {
		t.Fatalf("event %d: topic %q type %q source %q time %v, but data says type %q task %q (task.id %q) at %v",
			e.ID, e.Topic, e.Type, e.Source, e.Time, d.EventType, d.TaskID, d.Task.ID, d.Timestamp)
	}
	return d
}

// conversationEventOf is taskEventOf for conversation events.
func conversationEventOf(t *testing.T, e event.Event) actors.ConversationEvent {
	t.Helper()
	var d actors.ConversationEvent
	if err := strictUnmarshal(e.Data, &d); err != nil {
		t.Fatalf("event %d data %s: %v", e.ID, e.Data, err)
	}
	if e.Topic != event.TopicConversations || e.Type != d.EventType || e.Source != actors.ChatActorType+"/"+d.UserID ||
		!e.Time.Equal(d.Timestamp) {
		t.Fatalf("event %d: topic %q type %q source %q time %v, but data says type %q user %q at %v",
			e.ID, e.Topic, e.Type, e.Source, e.Time, d.EventType, d.UserID, d.Timestamp)
	}
	return d
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
