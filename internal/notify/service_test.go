package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/notify"
)

func newService(t *testing.T, cfg notify.Config, logger *slog.Logger) *notify.Service {
	t.Helper()
	s, err := notify.New(cfg, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestServiceLogPublishes(t *testing.T) {
	logs := &syncBuffer{}
	var published []notify.Notification
	s := newService(t, notify.Config{
		Publish: func(_ context.Context, n notify.Notification) error {
			published = append(published, n)
			return nil
		},
	}, slog.New(slog.NewJSONHandler(logs, nil)))

	n := note("wf-7", "alice")
	if err := s.Notify(context.Background(), n); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if len(published) != 1 || published[0] != n {
		t.Errorf("published: got %+v, want [%+v]", published, n)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(logs.String(), "\n", 2)[0]), &line); err != nil {
		t.Fatalf("log line: %v; logs:\n%s", err, logs)
	}
	for key, want := range map[string]any{
		"task_id": "task-wf-7", "assignee": "alice", "title": "Write report", "notification_id": "wf-7", "attempt": 1.0,
	} {
		if line[key] != want {
			t.Errorf("log %s: got %v, want %v", key, line[key], want)
		}
	}
	if s.Name() != notify.KindLog {
		t.Errorf("Name: got %q, want %q", s.Name(), notify.KindLog)
	}
}

func TestServicePublishErrors(t *testing.T) {
	t.Run("kind kept", func(t *testing.T) {
		s := newService(t, notify.Config{
			Publish: func(context.Context, notify.Notification) error { return errDown },
		}, discard())
		err := s.Notify(context.Background(), note("wf", "alice"))
		if !errors.Is(err, errDown) {
			t.Errorf("got %v, want %v", err, errDown)
		}
	})
	t.Run("timeout is transient", func(t *testing.T) {
		s := newService(t, notify.Config{
			Timeout: 20 * time.Millisecond,
			Publish: func(ctx context.Context, _ notify.Notification) error {
				<-ctx.Done()
				return ctx.Err()
			},
		}, discard())
		err := s.Notify(context.Background(), note("wf", "alice"))
		wantKind(t, err, errs.Unavailable)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want it to wrap context.DeadlineExceeded", err)
		}
	})
}

func TestServiceRejectsInvalidNotification(t *testing.T) {
	published := 0
	s := newService(t, notify.Config{
		Publish: func(context.Context, notify.Notification) error { published++; return nil },
	}, discard())
	err := s.Notify(context.Background(), notify.Notification{Attempt: -1})
	wantKind(t, err, errs.Invalid)
	for _, field := range []string{"id", "task_id", "assignee", "attempt"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("error %q does not mention %s", err, field)
		}
	}
	if published != 0 {
		t.Errorf("published: got %d, want 0", published)
	}
	if got := s.Status().Breaker.Counts.Requests; got != 0 {
		t.Errorf("breaker requests: got %d, want 0", got)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (notify.Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	err := notify.Config{
		Kind:                    "pigeon",
		Timeout:                 -time.Second,
		FailureRate:             2,
		BreakerFailures:         -1,
		BreakerOpenTimeout:      -time.Second,
		BreakerHalfOpenRequests: -1,
	}.Validate()
	wantKind(t, err, errs.Invalid)
	for _, field := range []string{"kind", "timeout", "failure_rate", "breaker_failures", "breaker_open_timeout", "breaker_half_open_requests"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("error does not report %s:\n%v", field, err)
		}
	}
	for _, url := range []string{"", "mailto:bob@example.com"} {
		_, err := notify.New(notify.Config{Kind: notify.KindWebhook, URL: url}, discard())
		wantKind(t, err, errs.Invalid)
	}
}

// TestServiceDemo is the demo path. One assignee's notifications fail by
// injection: they fail every time, but concern that recipient only, so the circuit
// stays closed for everybody else. A flaky service (a failure rate) is what opens
// it, until the service has had time to recover.
func TestServiceDemo(t *testing.T) {
	rc := newReceiver(t)
	url := strings.Replace(rc.srv.URL, "http://", "http://user:secret@", 1) + "/hook?token=hush"
	s := newService(t, notify.Config{
		Kind:               notify.KindWebhook,
		URL:                url,
		FailAssignees:      []string{"bob"},
		BreakerFailures:    2,
		BreakerOpenTimeout: time.Hour,
	}, discard())
	ctx := context.Background()

	for range 3 {
		if err := s.Notify(ctx, note("wf-2", "bob")); !errors.Is(err, notify.ErrInjected) || !errors.Is(err, notify.ErrRecipient) {
			t.Fatalf("Notify(bob): got %v, want an injected recipient failure", err)
		}
	}
	if err := s.Notify(ctx, note("wf-1", "alice")); err != nil {
		t.Fatalf("Notify(alice) after bob's failures: %v; one unreachable assignee must not open the circuit", err)
	}
	if st := s.Status(); st.Breaker.State != "closed" {
		t.Fatalf("breaker %s after recipient failures, want closed", st.Breaker.State)
	}

	flaky := newService(t, notify.Config{
		Kind:               notify.KindWebhook,
		URL:                url,
		FailureRate:        1,
		BreakerFailures:    2,
		BreakerOpenTimeout: time.Hour,
	}, discard())
	for range 2 {
		if err := flaky.Notify(ctx, note("wf-3", "carol")); !errors.Is(err, notify.ErrInjected) {
			t.Fatalf("Notify(carol): got %v, want an injected failure", err)
		}
	}
	if err := flaky.Notify(ctx, note("wf-4", "alice")); !errors.Is(err, notify.ErrCircuitOpen) {
		t.Fatalf("Notify(alice) on a flaky service: got %v, want ErrCircuitOpen", err)
	}
	if got := rc.count(); got != 1 {
		t.Errorf("receiver requests: got %d, want 1 (alice's on the healthy service)", got)
	}

	st := flaky.Status()
	if st.Kind != notify.KindWebhook || st.URL != rc.srv.URL+"/hook" || st.Timeout != "5s" ||
		st.FailureRate != 1 || st.Breaker.State != "open" || st.Breaker.Rejected != 1 {
		t.Errorf("status: got %+v", st)
	}
	b, _ := json.Marshal(st)
	if strings.Contains(string(b), "secret") || strings.Contains(string(b), "hush") {
		t.Errorf("status leaks credentials: %s", b)
	}
}

func TestServiceStatusJSON(t *testing.T) {
	s := newService(t, notify.Config{}, discard())
	var got map[string]any
	decode(t, s.Status(), &got)
	for key, want := range map[string]any{
		"kind": "log", "timeout": "5s", "failure_rate": 0.0, "fail_assignees": []any{},
	} {
		if b1, b2 := mustJSON(t, got[key]), mustJSON(t, want); b1 != b2 {
			t.Errorf("%s: got %s, want %s", key, b1, b2)
		}
	}
	if _, ok := got["url"]; ok {
		t.Errorf("log notifier status has a url: %v", got)
	}
	breaker, _ := got["breaker"].(map[string]any)
	for key, want := range map[string]any{
		"name": "notify-log", "state": "closed", "failures_to_open": 5.0, "open_timeout": "30s", "half_open_requests": 1.0,
	} {
		if breaker[key] != want {
			t.Errorf("breaker.%s: got %v, want %v", key, breaker[key], want)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
