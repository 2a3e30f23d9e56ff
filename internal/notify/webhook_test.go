package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/notify"
)

// receiver is a webhook receiver speaking JSON: it decodes each notification, dedupes
// on the Idempotency-Key as real receivers must, and answers with the status that
// respond picks.
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []*http.Request
	bodies   []notify.Notification
	seen     map[string]bool
	respond  func(w http.ResponseWriter, r *http.Request)
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{seen: map[string]bool{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	var n notify.Notification
	if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
		http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.requests = append(rc.requests, r)
	rc.bodies = append(rc.bodies, n)
	duplicate := rc.seen[r.Header.Get("Idempotency-Key")]
	rc.seen[r.Header.Get("Idempotency-Key")] = true
	respond := rc.respond
	rc.mu.Unlock()
	if respond != nil {
		respond(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"delivered": true, "duplicate": duplicate})
}

func (rc *receiver) setRespond(f func(w http.ResponseWriter, r *http.Request)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.respond = f
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests)
}

func newWebhook(t *testing.T, url string, timeout time.Duration) *notify.Webhook {
	t.Helper()
	w, err := notify.NewWebhook(url, timeout)
	if err != nil {
		t.Fatalf("NewWebhook(%q): %v", url, err)
	}
	return w
}

func TestWebhookDelivers(t *testing.T) {
	rc := newReceiver(t)
	w := newWebhook(t, rc.srv.URL+"/hooks/tasks", time.Second)
	deadline := time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)
	n := notify.Notification{ID: "wf-42", TaskID: "t-1", Title: "Write report", Assignee: "alice", Deadline: &deadline, Attempt: 1}

	if err := w.Notify(context.Background(), n); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	// A retry of the same workflow step carries the same key: the receiver sees a
	// duplicate it can drop.
	first := n
	n.Attempt = 2
	if err := w.Notify(context.Background(), n); err != nil {
		t.Fatalf("Notify again: %v", err)
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if got := len(rc.requests); got != 2 {
		t.Fatalf("requests: got %d, want 2", got)
	}
	if got := len(rc.seen); got != 1 {
		t.Errorf("distinct idempotency keys: got %d, want 1", got)
	}
	r := rc.requests[0]
	for header, want := range map[string]string{
		"Content-Type":    "application/json",
		"Idempotency-Key": "wf-42",
		"User-Agent":      "taskagent",
	} {
		if got := r.Header.Get(header); got != want {
			t.Errorf("header %s: got %q, want %q", header, got, want)
		}
	}
	if r.Method != http.MethodPost || r.URL.Path != "/hooks/tasks" {
		t.Errorf("request: got %s %s, want POST /hooks/tasks", r.Method, r.URL.Path)
	}
	got := rc.bodies[0]
	n = first
	if got.ID != "wf-42" || got.TaskID != "t-1" || got.Title != "Write report" || got.Assignee != "alice" ||
		got.Attempt != 1 || got.Deadline == nil || !got.Deadline.Equal(deadline) {
		t.Errorf("body: got %+v, want %+v", got, n)
	}
	if rc.bodies[1].Attempt != 2 {
		t.Errorf("second body attempt: got %d, want 2", rc.bodies[1].Attempt)
	}
}

func TestNotificationJSON(t *testing.T) {
	b, err := json.Marshal(notify.Notification{ID: "wf-1", TaskID: "t-1", Title: "x", Assignee: "a", Attempt: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"wf-1","task_id":"t-1","title":"x","assignee":"a","attempt":3}`
	if string(b) != want {
		t.Errorf("JSON: got %s, want %s", b, want)
	}
}

func TestWebhookStatusClassification(t *testing.T) {
	tests := []struct {
		status int
		want   errs.Kind // "" means delivered
	}{
		{http.StatusOK, ""},
		{http.StatusAccepted, ""},
		{http.StatusNoContent, ""},
		{http.StatusBadRequest, errs.Invalid},
		{http.StatusUnauthorized, errs.Invalid},
		{http.StatusNotFound, errs.Invalid},
		{http.StatusConflict, errs.Invalid},
		{http.StatusUnprocessableEntity, errs.Invalid},
		{http.StatusRequestTimeout, errs.Unavailable},
		{http.StatusTooManyRequests, errs.Unavailable},
		{http.StatusInternalServerError, errs.Unavailable},
		{http.StatusBadGateway, errs.Unavailable},
		{http.StatusServiceUnavailable, errs.Unavailable},
		{http.StatusFound, errs.Invalid}, // a redirected POST would lose its body
	}
	rc := newReceiver(t)
	w := newWebhook(t, rc.srv.URL, time.Second)
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			rc.setRespond(func(w http.ResponseWriter, r *http.Request) {
				if tt.status == http.StatusFound {
					w.Header().Set("Location", "/elsewhere")
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, `{"error":"receiver says no"}`)
			})
			before := rc.count()
			err := w.Notify(context.Background(), note("wf-1", "alice"))
			wantKind(t, err, tt.want)
			if tt.want != "" && !strings.Contains(err.Error(), "receiver says no") {
				t.Errorf("error %q does not carry the receiver's reason", err)
			}
			if got := rc.count() - before; got != 1 {
				t.Errorf("requests: got %d, want 1 (redirects are not followed)", got)
			}
		})
	}
}

func TestWebhookErrorBodyIsBounded(t *testing.T) {
	rc := newReceiver(t)
	rc.setRespond(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "line one\nline\ttwo\x00"+strings.Repeat("x", 1<<20))
	})
	w := newWebhook(t, rc.srv.URL, time.Second)
	err := w.Notify(context.Background(), note("wf-1", "alice"))
	wantKind(t, err, errs.Unavailable)
	if msg := err.Error(); len(msg) > 1024 || !strings.Contains(msg, "line one line two") || strings.ContainsAny(msg, "\n\t\x00") {
		t.Errorf("error message (%d bytes) is not a short single line: %.200q", len(msg), msg)
	}
}

func TestWebhookTimeout(t *testing.T) {
	rc := newReceiver(t)
	rc.setRespond(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers: the client must give up
	})
	w := newWebhook(t, rc.srv.URL, 50*time.Millisecond)
	err := w.Notify(context.Background(), note("wf-1", "alice"))
	wantKind(t, err, errs.Unavailable)
	if !strings.Contains(err.Error(), "timed out") {
		t.Errorf("error %q does not say it timed out", err)
	}
}

func TestWebhookCallerCanceled(t *testing.T) {
	rc := newReceiver(t)
	w := newWebhook(t, rc.srv.URL, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := w.Notify(ctx, note("wf-1", "alice"))
	wantKind(t, err, errs.Unavailable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
}

func TestWebhookUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := strings.Replace(srv.URL, "http://", "http://user:secret@", 1) + "/hook?token=hush"
	srv.Close()

	w := newWebhook(t, url, time.Second)
	err := w.Notify(context.Background(), note("wf-1", "alice"))
	wantKind(t, err, errs.Unavailable)
	if msg := err.Error(); strings.Contains(msg, "secret") || strings.Contains(msg, "hush") {
		t.Errorf("error leaks credentials: %q", msg)
	}
	if got, want := w.URL(), srv.URL+"/hook"; got != want {
		t.Errorf("URL(): got %q, want %q", got, want)
	}
}

func TestWebhookRejectsInvalidNotification(t *testing.T) {
	rc := newReceiver(t)
	w := newWebhook(t, rc.srv.URL, time.Second)
	err := w.Notify(context.Background(), notify.Notification{TaskID: "t-1", Assignee: "alice"})
	wantKind(t, err, errs.Invalid)
	if got := rc.count(); got != 0 {
		t.Errorf("requests: got %d, want 0", got)
	}
}

func TestNewWebhookRejectsBadURL(t *testing.T) {
	for _, url := range []string{
		"",
		"   ",
		"ftp://example.com/hook",
		"example.com/hook",
		"/hook",
		"http://",
		"https:///path",
		"http://[::1",
		"http://user:pass@/hook",
	} {
		t.Run(url, func(t *testing.T) {
			w, err := notify.NewWebhook(url, 0)
			if err == nil {
				t.Fatalf("NewWebhook(%q): got %v, want an error", url, w)
			}
			wantKind(t, err, errs.Invalid)
			if strings.Contains(err.Error(), "pass") {
				t.Errorf("error leaks credentials: %q", err)
			}
		})
	}
}
