package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// flakyReceiver is a webhook receiver that refuses its first request with 503 and
// counts the deliveries it accepts per idempotency key.
type flakyReceiver struct {
	mu        sync.Mutex
	requests  int
	delivered map[string]int
}

func (f *flakyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if f.requests == 1 {
		http.Error(w, "not yet", http.StatusServiceUnavailable)
		return
	}
	f.delivered[r.Header.Get("Idempotency-Key")]++
	w.WriteHeader(http.StatusOK)
}

func firstKey(m map[string]int) string {
	for k := range m {
		return k
	}
	return ""
}

func (f *flakyReceiver) counts() (requests int, delivered map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := make(map[string]int, len(f.delivered))
	for k, v := range f.delivered {
		d[k] = v
	}
	return f.requests, d
}

// TestWorkflowResumesAfterSIGKILL is the seed's success criterion 4: the process
// is killed while the workflow waits to retry a notification; after a restart the
// workflow resumes on its durable timer and finishes, and no step's effect shows
// twice (one delivery, one assignment event, one notified event).
func TestWorkflowResumesAfterSIGKILL(t *testing.T) {
	recv := &flakyReceiver{delivered: map[string]int{}}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	env := []string{
		"TASKAGENT_NOTIFIER=webhook",
		"TASKAGENT_NOTIFY_URL=" + srv.URL,
		"TASKAGENT_NOTIFY_BACKOFF=3s",
	}
	dir := t.TempDir()
	p := start(t, dir, env...)
	code, body := p.do("POST", "/tasks/process", map[string]any{
		"task_id": "task-001", "title": "Review PR #42",
		"description": "Review the authentication refactoring pull request",
		"assignee":    "alice@example.com", "deadline_seconds": 60,
	})
	if code != http.StatusAccepted || body["workflow_id"] != "task-workflow-task-001" || body["status"] != "started" {
		t.Fatalf("process: %d %v", code, body)
	}
	p.waitFor(10*time.Second, "the first, failing, notification", func() bool {
		n, _ := recv.counts()
		return n == 1
	})
	p.kill() // during the 3 s backoff

	restarted := time.Now()
	p2 := start(t, dir, env...)
	var wf map[string]any
	p2.waitFor(10*time.Second, "the workflow to complete", func() bool {
		_, wf = p2.do("GET", "/workflows/task-workflow-task-001", nil)
		return wf["runtime_status"] == "COMPLETED"
	})
	if d := time.Since(restarted); d > 5*time.Second {
		t.Errorf("workflow finished %v after the restart, want within 5s", d)
	}
	out, _ := wf["output"].(map[string]any)
	if out["status"] != "completed" {
		t.Fatalf("output = %v", out)
	}
	requests, delivered := recv.counts()
	if requests != 2 || len(delivered) != 1 || !strings.HasPrefix(firstKey(delivered), "task-workflow-task-001@") || delivered[firstKey(delivered)] != 1 {
		t.Fatalf("receiver saw %d requests and deliveries %v; want 2 requests, 1 delivery", requests, delivered)
	}
	_, tk := p2.do("GET", "/tasks/task-001", nil)
	if tk["status"] != "assigned" || tk["assignee"] != "alice@example.com" {
		t.Fatalf("task = %v", tk)
	}
	res, err := http.Get(p2.base + "/events?topic=task-events&after=0&limit=1000")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var page struct{ Events []struct{ Type string } }
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range page.Events {
		seen[e.Type]++
	}
	for _, typ := range []string{"task.created", "task.assigned", "task.deadline_set", "task.notified"} {
		if seen[typ] != 1 {
			t.Errorf("%d %s events, want 1 (all: %v)", seen[typ], typ, seen)
		}
	}
}

// TestCompensationThroughAPI is the seed's criterion 5 end to end: an assignee
// whose notifications always fail gets 3 attempts, then the assignment is undone.
func TestCompensationThroughAPI(t *testing.T) {
	p := start(t, t.TempDir(), "TASKAGENT_NOTIFY_FAIL_ASSIGNEES=bob@example.com", "TASKAGENT_NOTIFY_BACKOFF=100ms")
	code, body := p.do("POST", "/tasks/process", map[string]any{
		"task_id": "task-002", "title": "Review PR #43",
		"description": "Review the authorization refactoring pull request",
		"assignee":    "bob@example.com",
	})
	if code != http.StatusAccepted {
		t.Fatalf("process: %d %v", code, body)
	}
	var wf map[string]any
	p.waitFor(15*time.Second, "the workflow to finish", func() bool {
		_, wf = p.do("GET", "/workflows/task-workflow-task-002", nil)
		return wf["runtime_status"] == "COMPLETED"
	})
	out, _ := wf["output"].(map[string]any)
	if out["status"] != "failed" {
		t.Fatalf("output = %v", out)
	}
	attempts := 0
	for _, s := range wf["timeline"].([]any) {
		if s.(map[string]any)["name"] == "notify_assignee" {
			attempts++
		}
	}
	if attempts != 3 {
		t.Fatalf("%d notification attempts, want 3", attempts)
	}
	_, tk := p.do("GET", "/tasks/task-002", nil)
	if tk["status"] != "pending" || tk["assignee"] != nil {
		t.Fatalf("task after compensation = %v, want pending with no assignee", tk)
	}
	_, n := p.do("GET", "/notifier", nil)
	if n["kind"] != "log" {
		t.Fatalf("notifier = %v", n)
	}
}
