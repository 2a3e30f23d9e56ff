package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is a hand-written stand-in for taskagent's API: just enough of it,
// in memory, for a bench run. Each processed task goes created, assigned,
// deadline_set, then notified (or unassigned for a failing assignee) at once, and
// overdue at its deadline.
type fakeServer struct {
	mu      sync.Mutex
	events  []wireEvent
	changed chan struct{} // closed and replaced whenever an event is added
	tasks   map[string]*taskView
	results map[string]string
	fail    map[string]bool

	noStream     bool // answer GET /events with pages only
	dupReminders bool // fire every reminder twice
	throttle     int  // answer this many POST /tasks/process with 429 first
	notifierFail []string
}

func newFakeServer(t *testing.T, fail []string) (*fakeServer, *httptest.Server) {
	f := &fakeServer{
		changed:      make(chan struct{}),
		tasks:        map[string]*taskView{},
		results:      map[string]string{},
		fail:         map[string]bool{},
		notifierFail: fail,
	}
	for _, a := range fail {
		f.fail[a] = true
	}
	srv := httptest.NewServer(f.routes())
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeServer) publish(topic, typ string, data any) {
	b, _ := json.Marshal(data)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, wireEvent{ID: int64(len(f.events) + 1), Topic: topic, Type: typ, Time: time.Now().UTC(), Data: b})
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeServer) taskEvent(typ string, tk taskView) {
	f.publish("task-events", typ, map[string]any{"task_id": tk.ID, "task": tk})
}

func (f *fakeServer) after(cursor int64, limit int) ([]wireEvent, chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []wireEvent
	for _, e := range f.events[min(int(cursor), len(f.events)):] {
		if len(out) == limit {
			break
		}
		out = append(out, e)
	}
	return out, f.changed
}

func (f *fakeServer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /notifier", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"fail_assignees": f.notifierFail, "failure_rate": 0,
			"breaker": map[string]any{"state": "closed", "failures_to_open": 5}})
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"rss_bytes": 1048576}`))
	})
	mux.HandleFunc("POST /tasks/process", func(w http.ResponseWriter, r *http.Request) {
		var req processRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		throttled := f.throttle > 0
		f.throttle--
		f.mu.Unlock()
		if throttled {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error":{"code":"too_busy","message":"3 workflows are waiting to start"}}`))
			return
		}
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]string{"workflow_id": "task-workflow-" + req.TaskID, "status": "started"})
		go f.process(req)
	})
	mux.HandleFunc("GET /tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		tk, ok := f.tasks[r.PathValue("id")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(tk)
	})
	mux.HandleFunc("GET /workflows/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		res, ok := f.results[strings.TrimPrefix(r.PathValue("id"), "task-workflow-")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"runtime_status": "COMPLETED", "output": map[string]string{"status": res}})
	})
	mux.HandleFunc("POST /chat/{user}/messages", func(w http.ResponseWriter, r *http.Request) {
		f.publish("conversation-events", "conversation.updated", map[string]string{"user_id": r.PathValue("user")})
		w.Write([]byte(`{}`))
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		if f.noStream || !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
			limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			evs, _ := f.after(after, max(limit, 1))
			if evs == nil {
				evs = []wireEvent{}
			}
			json.NewEncoder(w).Encode(eventPage{Events: evs})
			return
		}
		cursor, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
		w.Header().Set("Content-Type", "text/event-stream")
		for {
			evs, changed := f.after(cursor, 100)
			for _, e := range evs {
				b, _ := json.Marshal(e)
				fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, b)
				cursor = e.ID
			}
			w.(http.Flusher).Flush()
			if len(evs) == 0 {
				select {
				case <-changed:
				case <-r.Context().Done():
					return
				}
			}
		}
	})
	return mux
}

func (f *fakeServer) process(req processRequest) {
	deadline := time.Now().Add(time.Duration(req.DeadlineSeconds) * time.Second).UTC()
	tk := taskView{ID: req.TaskID, Status: "pending"}
	f.set(tk)
	f.taskEvent(evCreated, tk)
	tk.Status, tk.Assignee = "assigned", req.Assignee
	f.set(tk)
	f.taskEvent("task.assigned", tk)
	tk.Deadline = &deadline
	f.set(tk)
	f.taskEvent(evDeadlineSet, tk)
	result := resultCompleted
	if f.fail[req.Assignee] {
		tk.Status, tk.Assignee = "pending", ""
		f.set(tk)
		f.taskEvent(evUnassigned, tk)
		result = resultFailed
	} else {
		f.publish("task-events", evNotified, map[string]string{"task_id": tk.ID, "assignee": req.Assignee})
	}
	f.mu.Lock()
	f.results[req.TaskID] = result
	f.mu.Unlock()
	time.AfterFunc(time.Until(deadline), func() {
		tk.Status = "overdue"
		f.set(tk)
		f.taskEvent(evOverdue, tk)
		if f.dupReminders {
			f.taskEvent(evOverdue, tk)
		}
	})
}

func (f *fakeServer) set(tk taskView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks[tk.ID] = &tk
}

func fakeConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Tasks, cfg.Users, cfg.FailShare = 60, 6, 0.2
	cfg.Concurrency = 8
	cfg.DeadlineSpread = time.Second
	cfg.Grace = 2 * time.Second
	cfg.Timeout = 30 * time.Second
	return cfg
}

func TestRunFake(t *testing.T) {
	for _, noStream := range []bool{false, true} {
		t.Run(fmt.Sprintf("noStream=%v", noStream), func(t *testing.T) {
			cfg := fakeConfig("")
			f, srv := newFakeServer(t, FailAssignees(cfg.Users, cfg.FailShare))
			f.noStream = noStream
			// Earlier events, which the run must skip: the search for the log's end
			// crosses several powers of two.
			for range 2500 {
				f.publish("task-events", evCreated, map[string]string{"task_id": "old"})
			}
			cfg.URL = srv.URL
			rep := runPassing(t, cfg)
			wantSource := sourceSSE
			if noStream {
				wantSource = sourcePages
			}
			failing := cfg.Tasks / cfg.Users * FailingUsers(cfg.Users, cfg.FailShare)
			for _, c := range []struct {
				name      string
				got, want any
			}{
				{"event source", rep.EventSource, wantSource},
				{"finished", rep.Finished, 60},
				{"compensations", rep.Compensations, failing},
				{"failed", rep.FinalStatuses[resultFailed], failing},
				{"task.created", rep.Events[evCreated], 60},
				{"task.overdue", rep.Events[evOverdue], 60},
				{"conversation.updated", rep.Events[evConvUpdated], 18},
				{"workflow latency samples", rep.WorkflowLatency.Count, 60},
				{"rss", *rep.RSSBytes, int64(1 << 20)},
			} {
				if c.got != c.want {
					t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
				}
			}
		})
	}
}

// runPassing runs the bench and fails the test if the run errs or its checks
// fall short.
func runPassing(t *testing.T, cfg Config) Report {
	t.Helper()
	rep, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Check(); err != nil {
		t.Fatalf("check: %v\n%s", err, rep.Text())
	}
	return rep
}

// TestRunRetriesThrottled: a 429 is back-pressure, not a failure; the bench waits
// as Retry-After says and sends the same request again.
func TestRunRetriesThrottled(t *testing.T) {
	cfg := fakeConfig("")
	f, srv := newFakeServer(t, FailAssignees(cfg.Users, cfg.FailShare))
	f.throttle = 5
	cfg.URL = srv.URL
	rep := runPassing(t, cfg)
	if rep.Throttled != 5 || rep.Accepted != cfg.Tasks || len(rep.Failures) != 0 {
		t.Fatalf("throttled %d, accepted %d, failures %v; want 5, %d, none", rep.Throttled, rep.Accepted, rep.Failures, cfg.Tasks)
	}
	if !strings.Contains(rep.Text(), "throttled       5 answers 429") {
		t.Errorf("the text report does not show the throttling:\n%s", rep.Text())
	}
}

func TestRunFindsDuplicateReminders(t *testing.T) {
	cfg := fakeConfig("")
	f, srv := newFakeServer(t, FailAssignees(cfg.Users, cfg.FailShare))
	f.dupReminders = true
	cfg.URL = srv.URL
	rep, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = rep.Check()
	if err == nil || !strings.Contains(err.Error(), "60 tasks got more than one task.overdue") {
		t.Fatalf("check = %v, want 60 duplicate reminders", err)
	}
}

func TestRunInterrupted(t *testing.T) {
	cfg := fakeConfig("")
	// The deadlines are up to a minute away, so the run is still waiting for
	// reminders when it is interrupted.
	cfg.DeadlineSpread = time.Minute
	_, srv := newFakeServer(t, FailAssignees(cfg.Users, cfg.FailShare))
	cfg.URL = srv.URL
	cfg = cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := newRunner(cfg, io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Interrupt the run once it has seen every workflow accepted and finished
	// (a workflow's events can arrive before its POST's answer).
	interrupted := make(chan time.Time, 1)
	go func() {
		defer cancel()
		defer func() { interrupted <- time.Now() }()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			r.mu.Lock()
			all := r.accepted == cfg.Tasks && r.finished == cfg.Tasks
			r.mu.Unlock()
			if all {
				return
			}
		}
	}()
	rep, err := r.run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(<-interrupted); d > 10*time.Second {
		t.Errorf("an interrupted run took %v to stop", d)
	}
	if !rep.Interrupted || rep.Accepted != cfg.Tasks || rep.Finished != cfg.Tasks {
		t.Errorf("interrupted %v, accepted %d, finished %d; want true, %d, %d", rep.Interrupted, rep.Accepted, rep.Finished, cfg.Tasks, cfg.Tasks)
	}
	if err := rep.Check(); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("check = %v, want the interruption named", err)
	}
}

func TestRunRefusesWrongFailAssignees(t *testing.T) {
	cfg := fakeConfig("")
	_, srv := newFakeServer(t, []string{User(0, cfg.Users)})
	cfg.URL = srv.URL
	_, err := Run(context.Background(), cfg, nil)
	want := EnvFailAssignees + "=" + FailAssigneesEnv(cfg.Users, cfg.FailShare)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want advice %q", err, want)
	}
}

func TestRank(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 200; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 100 * time.Millisecond}, {95, 190 * time.Millisecond}, {99, 198 * time.Millisecond}, {100, 200 * time.Millisecond}, {0, time.Millisecond}} {
		if got := Rank(s, c.p); got != c.want {
			t.Errorf("p%v: got %v, want %v", c.p, got, c.want)
		}
	}
	p := Summarize([]time.Duration{3, 1, 2})
	if p.Count != 3 || p.P50 != MillisOf(2) || p.Max != MillisOf(3) {
		t.Errorf("Summarize = %+v", p)
	}
}

func TestFailAssignees(t *testing.T) {
	for _, c := range []struct {
		users int
		share float64
		want  string
	}{
		{100, 0.05, "user-096@example.com,user-097@example.com,user-098@example.com,user-099@example.com,user-100@example.com"},
		{10, 0.05, "user-010@example.com"},
		{10, 0, ""},
		{1000, 0.001, "user-1000@example.com"},
	} {
		if got := FailAssigneesEnv(c.users, c.share); got != c.want {
			t.Errorf("users %d share %v: got %q, want %q", c.users, c.share, got, c.want)
		}
	}
}
