package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// verification is what reading back tasks or workflows found.
type verification struct {
	mu         sync.Mutex
	verified   int
	count      int      // mismatches
	mismatches []string // the first few
}

func (v *verification) ok() {
	v.mu.Lock()
	v.verified++
	v.mu.Unlock()
}

func (v *verification) wrong(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.verified++
	v.count++
	if len(v.mismatches) < maxExamples {
		v.mismatches = append(v.mismatches, fmt.Sprintf(format, args...))
	}
}

// each runs f for every item with cfg.Concurrency at a time, until ctx ends.
func (r *runner) each(ctx context.Context, items []*taskState, f func(t *taskState)) {
	work := make(chan *taskState)
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			for t := range work {
				f(t)
			}
		})
	}
	for _, t := range items {
		select {
		case work <- t:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
}

// deadlineSlack is how close to a deadline a task may be read either way: the
// clocks of the bench and the server need not agree to the millisecond.
const deadlineSlack = time.Second

// verifyTasks reads back every accepted task at time at: a failing assignee's task
// must have no assignee and be pending (overdue once its deadline has passed);
// every other task must have its assignee and be assigned (overdue once its
// deadline has passed).
func (r *runner) verifyTasks(ctx context.Context, at time.Time) *verification {
	v := &verification{}
	var items []*taskState
	r.mu.Lock()
	for _, t := range r.tasks {
		if t.accepted {
			items = append(items, t)
		}
	}
	r.mu.Unlock()
	r.each(ctx, items, func(t *taskState) {
		c := r.do(ctx, http.MethodGet, "/tasks/"+url.PathEscape(t.id), "GET /tasks/{id}", nil, 0)
		if c.err != nil {
			if ctx.Err() == nil {
				v.wrong("%s: GET failed: %v", t.id, c.err)
			}
			return
		}
		if c.status != http.StatusOK {
			v.wrong("%s: GET answered %d", t.id, c.status)
			return
		}
		var got taskView
		if err := json.Unmarshal(c.body, &got); err != nil {
			v.wrong("%s: %v", t.id, err)
			return
		}
		wantAssignee, before := r.users[t.user], "assigned"
		if t.failing {
			wantAssignee, before = "", "pending"
		}
		var want []string
		switch {
		case got.Deadline == nil:
			v.wrong("%s has no deadline", t.id)
			return
		case at.After(got.Deadline.Add(deadlineSlack)):
			want = []string{"overdue"}
		case at.Before(got.Deadline.Add(-deadlineSlack)):
			want = []string{before}
		default:
			want = []string{before, "overdue"}
		}
		statusOK := false
		for _, w := range want {
			statusOK = statusOK || got.Status == w
		}
		if !statusOK || got.Assignee != wantAssignee {
			v.wrong("%s is %s assigned to %q, want %s assigned to %q", t.id, got.Status, got.Assignee, strings.Join(want, " or "), wantAssignee)
			return
		}
		v.ok()
	})
	return v
}

// verifyWorkflows reads back the workflows of every failing assignee's task, of
// every task not seen finishing in the event stream, and of up to
// cfg.VerifyWorkflows others, spread evenly. Each must be COMPLETED with output
// status "failed" for a failing assignee and "completed" for the others.
func (r *runner) verifyWorkflows(ctx context.Context) *verification {
	v := &verification{}
	var items []*taskState
	var others []*taskState
	r.mu.Lock()
	for _, t := range r.tasks {
		if t.failing || t.finish == "" {
			items = append(items, t)
		} else {
			others = append(others, t)
		}
	}
	r.mu.Unlock()
	if n := r.cfg.VerifyWorkflows; n >= len(others) {
		items = append(items, others...)
	} else if n > 0 {
		for i := range n {
			items = append(items, others[i*len(others)/n])
		}
	}
	r.each(ctx, items, func(t *taskState) {
		r.mu.Lock()
		id, accepted := t.workflowID, t.accepted
		r.mu.Unlock()
		if id == "" {
			id = "task-workflow-" + t.id
		}
		// A task whose request failed may still have a workflow (the answer was
		// lost); if it has none, there is nothing to verify.
		handled := 0
		if !accepted {
			handled = http.StatusNotFound
		}
		c := r.do(ctx, http.MethodGet, "/workflows/"+url.PathEscape(id), "GET /workflows/{id}", nil, handled)
		if c.err != nil {
			if ctx.Err() == nil {
				v.wrong("%s: GET failed: %v", id, c.err)
			}
			return
		}
		if c.status == http.StatusNotFound && !accepted {
			return
		}
		if c.status != http.StatusOK {
			v.wrong("%s: GET answered %d", id, c.status)
			return
		}
		var got struct {
			RuntimeStatus string `json:"runtime_status"`
			Output        *struct {
				Status string `json:"status"`
			} `json:"output"`
		}
		if err := json.Unmarshal(c.body, &got); err != nil {
			v.wrong("%s: %v", id, err)
			return
		}
		result := strings.ToLower(got.RuntimeStatus) // running, failed, terminated, ...
		if got.RuntimeStatus == "COMPLETED" && got.Output != nil {
			result = got.Output.Status
		}
		r.mu.Lock()
		t.result = result
		r.mu.Unlock()
		want := resultCompleted
		if t.failing {
			want = resultFailed
		}
		if result != want {
			v.wrong("%s is %s with output %s, want COMPLETED with output %s", id, got.RuntimeStatus, result, want)
			return
		}
		v.ok()
	})
	return v
}

// fill completes rep from what the run saw, as of verifyAt.
func (r *runner) fill(rep *Report, verifyAt time.Time, tv, wv *verification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep.RunID = r.runID
	rep.URL = r.cfg.URL
	rep.Tasks = r.cfg.Tasks
	rep.Users = r.cfg.Users
	rep.Concurrency = r.cfg.Concurrency
	rep.DeadlineSpread = MillisOf(time.Duration(max(int(r.cfg.DeadlineSpread/time.Second), 1)) * time.Second)
	rep.EventSource = r.source
	rep.Accepted = r.accepted
	rep.FinalStatuses = map[string]int{}
	rep.Events = r.events
	rep.Compensations = r.compensations
	rep.RemindersFired = r.remindersFired
	rep.ChatsSent = r.chatsSent
	rep.Throttled = r.throttled
	rep.Failures = r.failures
	rep.Status5xx = r.status5xx
	rep.FailureExamples = r.failureExamples
	rep.EarlyReminders, rep.EarlyRemindersCount = r.early, r.earlyCount

	add := func(list *[]string, count *int, format string, args ...any) {
		*count++
		if len(*list) < maxExamples {
			*list = append(*list, fmt.Sprintf(format, args...))
		}
	}
	var notFinal int
	for _, t := range r.tasks {
		if t.failing && t.accepted {
			rep.ExpectedCompensations++
		}
		result := t.result
		if result == "" {
			switch t.finish {
			case evNotified:
				result = resultCompleted
			case evUnassigned:
				result = resultFailed
			}
		}
		switch result {
		case resultCompleted, resultFailed, resultRejected:
			rep.Finished++
		case "":
			result = resultUnknown
			fallthrough
		default:
			add(&rep.NotFinal, &notFinal, "%s (%s)", t.id, result)
		}
		rep.FinalStatuses[result]++

		switch {
		case t.notified && t.unassigned:
			add(&rep.WrongOutcomes, &rep.WrongOutcomesCount, "%s was notified and compensated", t.id)
		case t.failing && t.notified:
			add(&rep.WrongOutcomes, &rep.WrongOutcomesCount, "%s was notified though %s fails", t.id, r.users[t.user])
		case !t.failing && t.unassigned:
			add(&rep.WrongOutcomes, &rep.WrongOutcomesCount, "%s was compensated though %s is notified fine", t.id, r.users[t.user])
		case t.unassigned && (t.afterUnassign.Assignee != "" || (t.afterUnassign.Status != "pending" && t.afterUnassign.Status != "overdue")):
			add(&rep.WrongOutcomes, &rep.WrongOutcomesCount, "%s was left %s assigned to %q by its compensation, want pending with no assignee",
				t.id, t.afterUnassign.Status, t.afterUnassign.Assignee)
		}

		if !t.deadline.IsZero() && !t.deadline.After(verifyAt) {
			rep.RemindersDue++
			if t.overdue == 0 {
				add(&rep.MissingReminders, &rep.MissingRemindersCount, "%s (deadline %s)", t.id, t.deadline.Format(time.RFC3339Nano))
			}
		}
		if t.overdue > 1 {
			add(&rep.DuplicateReminders, &rep.DuplicateRemindersCount, "%s fired %d times", t.id, t.overdue)
		}
	}
	if rep.Finished > 0 && r.lastFinish.After(r.firstSend) {
		rep.WorkflowsPerSecond = float64(r.finished) / r.lastFinish.Sub(r.firstSend).Seconds()
	}
	if r.completed > 0 && r.lastCompleted.After(r.firstSend) {
		rep.CompletedPerSecond = float64(r.completed) / r.lastCompleted.Sub(r.firstSend).Seconds()
	}
	rep.WorkflowLatency = Summarize(slices.Clone(r.wfLat))
	rep.SubmitLatency = Summarize(slices.Clone(r.submitLat))
	rep.ActorCallLatency = Summarize(slices.Clone(r.chatLat))
	rep.GetLatency = Summarize(slices.Clone(r.getLat))
	rep.ReminderLateness = Summarize(slices.Clone(r.lateness))
	if tv != nil {
		rep.TasksVerified, rep.TaskMismatches, rep.TaskMismatchesCount = tv.verified, tv.mismatches, tv.count
	}
	if wv != nil {
		rep.WorkflowsVerified, rep.WorkflowMismatches, rep.WorkflowMismatchesCount = wv.verified, wv.mismatches, wv.count
	}
}
