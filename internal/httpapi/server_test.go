package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/task"
)

func TestHealth(t *testing.T) {
	a := newTestAPI(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		if got := decode[statusResponse](t, a.do("GET", path, ""), http.StatusOK); got.Status != "ok" {
			t.Errorf("GET %s: status %q, want ok", path, got.Status)
		}
	}
}

func TestReadyz(t *testing.T) {
	cases := []struct {
		name        string
		err         error
		wantCode    errs.Kind
		wantMessage string
	}{
		{"unavailable", errs.E(errs.Unavailable, "the database is closed"), errs.Unavailable, "the database is closed"},
		{"wrapped", fmt.Errorf("check sidecar: %w", errs.E(errs.Unavailable, "daprd is not up")), errs.Unavailable, "daprd is not up"},
		// An error without a kind may say anything; the probe gets no detail.
		{"untyped", errors.New("open /var/lib/taskagent/secret.db: permission denied"), errs.Internal, "internal error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newTestAPI(t, func(cfg *Config) {
				cfg.Ready = func(context.Context) error { return c.err }
			})
			e := wantError(t, a.do("GET", "/readyz", ""), http.StatusServiceUnavailable, c.wantCode, "")
			if e.Message != c.wantMessage {
				t.Errorf("message %q, want %q", e.Message, c.wantMessage)
			}
			// Liveness does not depend on readiness.
			decode[statusResponse](t, a.do("GET", "/healthz", ""), http.StatusOK)
		})
	}
}

// TestRuntimeClosed checks what clients see once the runtime under the API has shut
// down: every route that needs it answers 503 unavailable, never a 500; an open
// event stream ends instead of holding http.Server.Shutdown up; liveness stays ok.
func TestRuntimeClosed(t *testing.T) {
	a := newTestAPI(t)
	a.createTask("t-1", "Task")
	s := a.openStream(t, "")
	if got := taskIDOf(t, s.nextEvent(t)); got != "t-1" {
		t.Fatalf("first event for %q, want t-1", got)
	}

	if err := a.host.Close(); err != nil {
		t.Fatalf("close runtime: %v", err)
	}
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

	cases := []struct{ method, path, body string }{
		{"GET", "/readyz", ""},
		{"POST", "/tasks", `{"task_id": "t-2", "title": "Two"}`},
		{"GET", "/tasks/t-1", ""},
		{"POST", "/tasks/t-1/assign", `{"assignee": "bob"}`},
		{"POST", "/tasks/t-1/unassign", ""},
		{"POST", "/tasks/t-1/status", `{"status": "completed"}`},
		{"POST", "/tasks/t-1/deadline", `{"deadline_seconds": 60}`},
		{"POST", "/chat/alice/messages", `{"content": "hi"}`},
		{"GET", "/chat/alice/history", ""},
		{"DELETE", "/chat/alice/history", ""},
		{"GET", "/events?after=0", ""},
		{"GET", "/events", ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			wantError(t, a.do(c.method, c.path, c.body), http.StatusServiceUnavailable, errs.Unavailable, "")
		})
	}
	decode[statusResponse](t, a.do("GET", "/healthz", ""), http.StatusOK)
	for _, rec := range a.logs.records(t) {
		if rec["level"] == "ERROR" {
			t.Errorf("an unavailable runtime was logged as an error: %v", rec)
		}
	}
}

func TestUnknownRoutes(t *testing.T) {
	a := newTestAPI(t)
	cases := []struct {
		method, path string
		status       int
		code         errs.Kind
		allow        []string
	}{
		{"GET", "/nope", 404, errs.NotFound, nil},
		{"GET", "/tasks/t-1/nope", 404, errs.NotFound, nil},
		{"POST", "/tasks/", 404, errs.NotFound, nil},
		{"GET", "/tasks", 405, kindMethodNotAllowed, []string{"POST"}},
		{"DELETE", "/tasks/t-1", 405, kindMethodNotAllowed, []string{"GET", "HEAD"}},
		{"GET", "/tasks/t-1/assign", 405, kindMethodNotAllowed, []string{"POST"}},
		{"PUT", "/chat/alice/history", 405, kindMethodNotAllowed, []string{"DELETE", "GET"}},
		{"POST", "/events", 405, kindMethodNotAllowed, []string{"GET"}},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := a.do(c.method, c.path, "")
			wantError(t, r, c.status, c.code, "")
			allow := r.header.Get("Allow")
			for _, m := range c.allow {
				if !strings.Contains(allow, m) {
					t.Errorf("Allow %q does not list %s", allow, m)
				}
			}
			if c.allow == nil && allow != "" {
				t.Errorf("Allow %q on a 404", allow)
			}
		})
	}
}

// failingTasks is a TaskService whose Get fails in a chosen way.
type failingTasks struct {
	TaskService
	get func() (task.Task, error)
}

func (f failingTasks) Get(ctx context.Context, id string) (task.Task, error) { return f.get() }

func TestInternalErrorsAreLoggedNotSent(t *testing.T) {
	const secret = "open /var/lib/taskagent/secret.db: disk I/O error"
	cases := []struct {
		name       string
		err        error
		status     int
		code       errs.Kind
		wantLogged bool
	}{
		{"untyped", fmt.Errorf("load task: %w", errors.New(secret)), 500, errs.Internal, true},
		{"internal kind", errs.E(errs.Internal, "%s", secret), 500, errs.Internal, true},
		{"unknown kind", &errs.Error{Kind: "weird", Message: secret}, 500, errs.Internal, true},
		{"deadline", fmt.Errorf("invoke actor: %w", context.DeadlineExceeded), 503, errs.Unavailable, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newTestAPI(t, func(cfg *Config) {
				cfg.Tasks = failingTasks{TaskService: cfg.Tasks, get: func() (task.Task, error) { return task.Task{}, c.err }}
			})
			r := a.do("GET", "/tasks/t-1", "")
			wantError(t, r, c.status, c.code, "")
			if strings.Contains(string(r.body), "secret") || strings.Contains(string(r.body), "actor") {
				t.Errorf("response leaks the cause: %s", r.body)
			}
			logged := 0
			for _, rec := range a.logs.records(t) {
				if rec["level"] == "ERROR" {
					logged++
					if !strings.Contains(fmt.Sprint(rec["err"]), "secret.db") {
						t.Errorf("error log %v does not hold the cause", rec)
					}
				}
			}
			if want := map[bool]int{true: 1, false: 0}[c.wantLogged]; logged != want {
				t.Errorf("%d error log records, want %d:\n%s", logged, want, a.logs)
			}
		})
	}
}

func TestPanicRecovery(t *testing.T) {
	a := newTestAPI(t, func(cfg *Config) {
		cfg.Tasks = failingTasks{TaskService: cfg.Tasks, get: func() (task.Task, error) { panic("boom at /secret/place") }}
	})
	r := a.do("GET", "/tasks/t-1", "")
	e := wantError(t, r, http.StatusInternalServerError, errs.Internal, "")
	if e.Message != "internal error" {
		t.Errorf("message %q, want internal error", e.Message)
	}
	var sawPanic, sawRequest bool
	for _, rec := range a.logs.records(t) {
		switch rec["msg"] {
		case "panic serving request":
			sawPanic = rec["panic"] == "boom at /secret/place" && rec["stack"] != ""
		case "request":
			sawRequest = sawRequest || rec["status"] == float64(500)
		}
	}
	if !sawPanic || !sawRequest {
		t.Errorf("logs lack the panic (%v) or the 500 request (%v):\n%s", sawPanic, sawRequest, a.logs)
	}
	// The server goes on serving.
	decode[statusResponse](t, a.do("GET", "/healthz", ""), http.StatusOK)
}

func TestRequestLog(t *testing.T) {
	a := newTestAPI(t)
	a.do("GET", "/tasks/nope", "")
	for _, rec := range a.logs.records(t) {
		if rec["msg"] == "request" && rec["path"] == "/tasks/nope" {
			if rec["method"] != "GET" || rec["status"] != float64(404) || rec["route"] != "GET /tasks/{id}" || rec["level"] != "INFO" {
				t.Errorf("request log %v, want GET, 404, route GET /tasks/{id}, INFO", rec)
			}
			if _, ok := rec["duration"]; !ok {
				t.Errorf("request log %v has no duration", rec)
			}
			return
		}
	}
	t.Errorf("no request log for GET /tasks/nope:\n%s", a.logs)
}

func TestNewRequiresServices(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New with no services did not panic")
		}
	}()
	New(Config{})
}
