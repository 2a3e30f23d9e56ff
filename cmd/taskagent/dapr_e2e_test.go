//go:build linux

package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// notifyReceiver is the webhook both replicas notify. It refuses the first
// request for each task in failFirst with 503 (a transient failure: the
// workflow retries), every request for a task in refuse with 422 (a refusal
// for good: the workflow compensates at once), accepts every other request,
// and counts requests and acceptances per task.
type notifyReceiver struct {
	failFirst map[string]bool
	refuse    map[string]bool

	mu       sync.Mutex
	requests map[string]int // task id -> requests
	accepted map[string]int // task id -> requests answered 2xx
	keys     map[string][]string
}

func newNotifyReceiver(failFirst, refuse []string) *notifyReceiver {
	r := &notifyReceiver{failFirst: map[string]bool{}, refuse: map[string]bool{},
		requests: map[string]int{}, accepted: map[string]int{}, keys: map[string][]string{}}
	for _, id := range failFirst {
		r.failFirst[id] = true
	}
	for _, id := range refuse {
		r.refuse[id] = true
	}
	return r
}

func (r *notifyReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var n struct {
		TaskID string `json:"task_id"`
	}
	if err := json.NewDecoder(req.Body).Decode(&n); err != nil || n.TaskID == "" {
		http.Error(w, "no task_id", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests[n.TaskID]++
	if r.refuse[n.TaskID] {
		http.Error(w, "no such assignee", http.StatusUnprocessableEntity)
		return
	}
	if r.failFirst[n.TaskID] && r.requests[n.TaskID] == 1 {
		http.Error(w, "not yet", http.StatusServiceUnavailable)
		return
	}
	r.accepted[n.TaskID]++
	r.keys[n.TaskID] = append(r.keys[n.TaskID], req.Header.Get("Idempotency-Key"))
	w.WriteHeader(http.StatusOK)
}

// counts returns the requests and the accepted deliveries for task id.
func (r *notifyReceiver) counts(id string) (requests, accepted int, keys []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[id], r.accepted[id], slices.Clone(r.keys[id])
}

// TestDaprEndToEnd is the seed's success criteria 1 to 5 on Dapr, with two
// replicas of taskagent, each beside its own daprd, sharing Redis and
// placement: a workflow processes a task on one replica and is read on the
// other (actor state lives in Redis, placement routes each actor to one
// replica); a deadline reminder makes a task overdue; a user's chat history
// holds across calls to alternating replicas; a conversation event reaches
// both replicas through Redis pub/sub; a refused notification makes the
// workflow undo the assignment; and a replica killed (app and daprd,
// SIGKILL) while a workflow waits to retry a notification leaves the workflow
// to finish on the survivor, with one delivery and the task intact.
func TestDaprEndToEnd(t *testing.T) {
	const killTask, refusedTask = "task-kill", "task-003"
	recv := newNotifyReceiver([]string{killTask}, []string{refusedTask})
	hook := httptest.NewServer(recv)
	defer hook.Close()

	began := time.Now()
	c := startDaprCluster(t, 2,
		"TASKAGENT_NOTIFIER=webhook",
		"TASKAGENT_NOTIFY_URL="+hook.URL,
		"TASKAGENT_NOTIFY_BACKOFF=5s",
	)
	r1, r2 := c.replicas[0].app, c.replicas[1].app
	t.Logf("cluster of 2 replicas ready in %v", time.Since(began).Round(time.Millisecond))

	// Criteria 1 and 4: the seed's request, processed through replica 1, read
	// through replica 2.
	code, body := r1.do("POST", "/tasks/process", map[string]any{
		"task_id": "task-001", "title": "Review PR #42",
		"description": "Review the authentication refactoring pull request",
		"assignee":    "alice@example.com", "deadline_seconds": 60,
	})
	if code != http.StatusAccepted || body["workflow_id"] != "task-workflow-task-001" || body["status"] != "started" {
		t.Fatalf("process task-001 on replica 1: %d %v", code, body)
	}
	var wf map[string]any
	r2.waitFor(30*time.Second, "task-001's workflow to complete, read on replica 2", func() bool {
		_, wf = r2.get("/workflows/task-workflow-task-001")
		return wf["runtime_status"] == "COMPLETED"
	})
	if out, _ := wf["output"].(map[string]any); out["status"] != "completed" {
		t.Fatalf("task-001's workflow output = %v, want status completed", wf["output"])
	}
	code, tk := r2.do("GET", "/tasks/task-001", nil)
	if code != http.StatusOK || tk["status"] != "assigned" || tk["assignee"] != "alice@example.com" ||
		tk["title"] != "Review PR #42" || tk["deadline"] == nil {
		t.Fatalf("task-001 on replica 2: %d %v, want assigned to alice@example.com with a deadline", code, tk)
	}
	if _, accepted, _ := recv.counts("task-001"); accepted != 1 {
		t.Fatalf("task-001: %d notifications accepted, want 1", accepted)
	}

	// Criterion 2: a deadline reminder (Dapr's granularity is a second).
	code, body = r1.do("POST", "/tasks", map[string]any{
		"task_id": "task-002", "title": "Write the release notes",
		"description": "Summarize the changes since the last release",
		"assignee":    "bob@example.com", "deadline_seconds": 2,
	})
	if code != http.StatusCreated {
		t.Fatalf("create task-002: %d %v", code, body)
	}
	r2.waitFor(20*time.Second, "task-002 to become overdue", func() bool {
		_, tk = r2.get("/tasks/task-002")
		return tk["status"] == "overdue"
	})
	if tk["assignee"] != "bob@example.com" || tk["title"] != "Write the release notes" {
		t.Fatalf("overdue task-002 lost data: %v", tk)
	}

	// Criterion 3: chat history across calls to alternating replicas.
	messages := []string{"hello", "can you help with a task?", "what is overdue?", "thanks"}
	for i, m := range messages {
		p := []*process{r1, r2}[i%2]
		if code, body := p.do("POST", "/chat/user-alice/messages", map[string]any{"content": m}); code != http.StatusOK {
			t.Fatalf("send %q through replica %d: %d %v", m, i%2+1, code, body)
		}
	}
	for i, p := range []*process{r1, r2} {
		code, body := p.do("GET", "/chat/user-alice/history", nil)
		hist, _ := body["history"].([]any)
		if code != http.StatusOK || len(hist) != 2*len(messages) {
			t.Fatalf("history through replica %d: %d, %d entries, want %d: %v", i+1, code, len(hist), 2*len(messages), body)
		}
		for j, m := range messages {
			user, _ := hist[2*j].(map[string]any)
			reply, _ := hist[2*j+1].(map[string]any)
			if user["role"] != "user" || user["content"] != m || reply["role"] != "assistant" {
				t.Fatalf("history through replica %d, exchange %d: %v, %v; want user %q and an assistant reply", i+1, j, user, reply, m)
			}
		}
	}

	// conversation.updated events reach both replicas through Redis pub/sub:
	// every sidecar reads the topic with its own consumer group.
	for i, p := range []*process{r1, r2} {
		var got []string
		p.waitFor(20*time.Second, "replica "+string(rune('1'+i))+" to receive the conversation events", func() bool {
			got = conversationMessages(p, "user-alice")
			return len(got) >= len(messages)
		})
		// Dapr's Redis pub/sub hands a subscriber several messages at once, so
		// the order received may differ from the order published.
		slices.Sort(got)
		if want := slices.Sorted(slices.Values(messages)); !slices.Equal(got, want) {
			t.Fatalf("replica %d received conversation.updated for %q, want %q once each", i+1, got, want)
		}
	}

	// Criterion 5: the receiver refuses the notification for good, so the
	// workflow undoes the assignment; processed on replica 2, read on replica 1.
	code, body = r2.do("POST", "/tasks/process", map[string]any{
		"task_id": refusedTask, "title": "Review PR #43",
		"description": "Review the authorization refactoring pull request",
		"assignee":    "dave@example.com", "deadline_seconds": 60,
	})
	if code != http.StatusAccepted {
		t.Fatalf("process %s on replica 2: %d %v", refusedTask, code, body)
	}
	r1.waitFor(30*time.Second, refusedTask+"'s workflow to finish, read on replica 1", func() bool {
		_, wf = r1.get("/workflows/task-workflow-" + refusedTask)
		return wf["runtime_status"] == "COMPLETED"
	})
	out, _ := wf["output"].(map[string]any)
	comps, _ := out["compensations"].([]any)
	if out["status"] != "failed" || len(comps) != 1 || comps[0].(map[string]any)["status"] != "done" {
		t.Fatalf("%s's workflow output = %v, want status failed after one compensation done", refusedTask, out)
	}
	code, tk = r1.do("GET", "/tasks/"+refusedTask, nil)
	if code != http.StatusOK || tk["status"] != "pending" || tk["assignee"] != nil {
		t.Fatalf("%s after compensation: %d %v, want pending with no assignee", refusedTask, code, tk)
	}
	if requests, accepted, _ := recv.counts(refusedTask); requests != 1 || accepted != 0 {
		t.Fatalf("%s: receiver saw %d requests, accepted %d; want 1 refused (a refusal is not retried)", refusedTask, requests, accepted)
	}

	// Criterion 4 across a crash: a replica dies while a workflow waits to
	// retry a notification.
	killDuringBackoff(t, c, recv, killTask)
}

// conversationMessages returns the user messages of the conversation.updated
// events of user that replica p has received, in the order received.
func conversationMessages(p *process, user string) []string {
	res, err := http.Get(p.base + "/events?topic=conversation-events&after=0&limit=1000")
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	var page struct {
		Events []struct {
			Type string
			Data struct {
				UserID      string `json:"user_id"`
				UserMessage struct {
					Content string `json:"content"`
				} `json:"user_message"`
			}
		}
	}
	if json.NewDecoder(res.Body).Decode(&page) != nil {
		return nil
	}
	var out []string
	for _, e := range page.Events {
		if e.Type == "conversation.updated" && e.Data.UserID == user {
			out = append(out, e.Data.UserMessage.Content)
		}
	}
	return out
}

// killDuringBackoff starts a workflow whose first notification fails, kills
// the replica that runs the workflow (its app and its daprd, SIGKILL) while the
// workflow waits out the backoff, and checks that the workflow finishes on the
// survivor with one delivery and the task intact.
//
// On Dapr a workflow's orchestrator and its activities are separate actors
// that placement may put on different replicas. The replica to kill is the one
// hosting the workflow actor, whose state and backoff timer (a reminder) the
// survivor must take over: its app logs the orchestrator's "step failed". The
// replica whose app ran the failed attempt ("activity notify_assignee failed")
// is logged too. The test logs how long after the kill the workflow resumed
// and completed, as resume_after_kill_ms=N and complete_after_kill_ms=N, and
// asserts only a generous bound.
func killDuringBackoff(t *testing.T, c *daprCluster, recv *notifyReceiver, taskID string) {
	t.Helper()
	const backoff = 5 * time.Second
	wfID := "task-workflow-" + taskID
	r1 := c.replicas[0].app
	code, body := r1.do("POST", "/tasks/process", map[string]any{
		"task_id": taskID, "title": "Deploy the hotfix",
		"description": "Roll the authentication hotfix out to production",
		"assignee":    "carol@example.com", "deadline_seconds": 3600,
	})
	if code != http.StatusAccepted || body["workflow_id"] != wfID {
		t.Fatalf("process %s: %d %v", taskID, code, body)
	}

	var host, ran *daprReplica
	var failedAt time.Time
	r1.waitFor(30*time.Second, "the first notification of "+taskID+" to fail and the workflow to see it", func() bool {
		for _, r := range c.replicas {
			for _, rec := range r.app.logRecords("activity notify_assignee failed") {
				if rec["task_id"] == taskID {
					ran = r
					failedAt, _ = time.Parse(time.RFC3339Nano, rec["time"].(string))
				}
			}
			for _, rec := range r.app.logRecords("step failed") {
				if rec["workflow_id"] == wfID && rec["step"] == "notify_assignee" {
					host = r
				}
			}
		}
		return ran != nil && host != nil
	})
	if requests, accepted, _ := recv.counts(taskID); requests != 1 || accepted != 0 {
		t.Fatalf("before the kill the receiver saw %d requests, %d accepted for %s; want 1 refused", requests, accepted, taskID)
	}
	// The workflow has saved the failure and its backoff timer once its state
	// changed after the failure.
	r1.waitFor(10*time.Second, "the workflow to save the failed attempt", func() bool {
		_, wf := r1.get("/workflows/" + wfID)
		ts, _ := wf["updated_at"].(string)
		updated, err := time.Parse(time.RFC3339Nano, ts)
		return err == nil && updated.After(failedAt) && wf["runtime_status"] == "RUNNING"
	})
	var survivor *daprReplica
	for _, r := range c.replicas {
		if r != host {
			survivor = r
		}
	}
	killed := time.Now()
	if killed.Sub(failedAt) >= backoff/2 {
		t.Fatalf("the kill came %v after the failed attempt, too close to the end of the %v backoff to prove anything", killed.Sub(failedAt), backoff)
	}
	host.kill()
	t.Logf("the workflow ran on %s, the failed attempt on %s; killed %s (app and daprd) %v after the failed attempt",
		host.name, ran.name, host.name, killed.Sub(failedAt).Round(time.Millisecond))

	p := survivor.app
	var wf map[string]any
	p.waitFor(60*time.Second, "the workflow to complete on "+survivor.name, func() bool {
		_, wf = p.get("/workflows/" + wfID)
		return wf["runtime_status"] == "COMPLETED"
	})
	completed := time.Since(killed)

	if out, _ := wf["output"].(map[string]any); out["status"] != "completed" {
		t.Fatalf("%s output = %v, want status completed", wfID, wf["output"])
	}
	// The backoff step of the timeline says when the timer was set and when
	// the workflow resumed after it, by the workflow's own clock.
	var timerSet, resumed time.Time
	steps, _ := wf["timeline"].([]any)
	for _, s := range steps {
		s, _ := s.(map[string]any)
		if s["name"] == "backoff" {
			timerSet, _ = time.Parse(time.RFC3339Nano, s["started_at"].(string))
			resumed, _ = time.Parse(time.RFC3339Nano, s["finished_at"].(string))
		}
	}
	if resumed.IsZero() {
		t.Fatalf("%s timeline has no backoff step: %v", wfID, steps)
	}
	t.Logf("on %s the workflow resumed %v and completed %v after the kill; its timer was due %v after the kill",
		survivor.name, resumed.Sub(killed).Round(time.Millisecond), completed.Round(time.Millisecond),
		timerSet.Add(backoff).Sub(killed).Round(time.Millisecond))
	t.Logf("resume_after_kill_ms=%d complete_after_kill_ms=%d timer_due_after_kill_ms=%d",
		resumed.Sub(killed).Milliseconds(), completed.Milliseconds(), timerSet.Add(backoff).Sub(killed).Milliseconds())

	requests, accepted, keys := recv.counts(taskID)
	if accepted != 1 {
		t.Fatalf("receiver accepted %d notifications for %s (of %d requests, keys %q), want exactly 1", accepted, taskID, requests, keys)
	}
	code, tk := p.do("GET", "/tasks/"+taskID, nil)
	if code != http.StatusOK || tk["status"] != "assigned" || tk["assignee"] != "carol@example.com" || tk["deadline"] == nil {
		t.Fatalf("%s on %s: %d %v, want assigned to carol@example.com with a deadline", taskID, survivor.name, code, tk)
	}
	code, tk = p.do("GET", "/tasks/task-001", nil)
	if code != http.StatusOK || tk["status"] != "assigned" || tk["assignee"] != "alice@example.com" {
		t.Fatalf("task-001 on %s after the kill: %d %v", survivor.name, code, tk)
	}
}
