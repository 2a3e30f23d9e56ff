package bench

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// maxExamples bounds the ids or descriptions a report keeps per kind of shortfall.
const maxExamples = 10

// Report is what a run measured and what it found. Its JSON form is what
// "taskagent bench --json" prints; durations are in milliseconds.
type Report struct {
	RunID          string    `json:"run_id"`
	URL            string    `json:"url"`
	Tasks          int       `json:"tasks"`
	Users          int       `json:"users"`
	Concurrency    int       `json:"concurrency"`
	FailAssignees  []string  `json:"fail_assignees"`
	DeadlineSpread Millis    `json:"deadline_spread_ms"`
	StartedAt      time.Time `json:"started_at"`
	// Elapsed is the whole run, verification included.
	Elapsed Millis `json:"elapsed_ms"`
	// Interrupted says the run was stopped (SIGINT) before it finished: the
	// figures cover what it did.
	Interrupted bool `json:"interrupted,omitempty"`
	// TimedOut says the load or the wait for its results ran out of time.
	TimedOut bool `json:"timed_out,omitempty"`
	// EventSource is "sse" or "pages": how the event stream was read.
	EventSource string `json:"event_source"`

	// Accepted counts tasks whose POST /tasks/process was answered 202.
	Accepted int `json:"accepted"`
	// Finished counts workflows that reached a final status, seen in the event
	// stream (task.notified, task.unassigned) or read back as finished.
	Finished int `json:"finished"`
	// FinalStatuses counts the workflows' results: completed, failed (compensated),
	// rejected, and "unknown" for those never seen to finish.
	FinalStatuses map[string]int `json:"final_statuses"`
	// NotFinal lists some workflows that never reached a final status.
	NotFinal []string `json:"not_final,omitempty"`
	// WorkflowsPerSecond is Finished over the time from the first request to the
	// last finish.
	WorkflowsPerSecond float64 `json:"workflows_per_second"`
	// CompletedPerSecond counts only the workflows that completed through their
	// five activities (notified), over the time from the first request to the
	// last of them. It leaves out the failing assignees' workflows, which wait
	// out their notification backoff (1 s and 2 s by default) before they
	// compensate: that fixed tail lowers WorkflowsPerSecond in a short run
	// whatever the server's speed.
	CompletedPerSecond float64 `json:"completed_per_second"`

	// WorkflowLatency runs from the 202 to the event that finished the workflow,
	// as the client read it.
	WorkflowLatency Percentiles `json:"workflow_latency"`
	// SubmitLatency is POST /tasks/process, answered 202.
	SubmitLatency Percentiles `json:"submit_latency"`
	// ActorCallLatency is POST /chat/{user}/messages: one chat actor turn.
	ActorCallLatency Percentiles `json:"actor_call_latency"`
	// GetLatency is GET /tasks/{id} on a sample of tasks during the load.
	GetLatency Percentiles `json:"get_latency"`
	// ReminderLateness is each task.overdue event's time minus the deadline it
	// enforced, both by the server's clock.
	ReminderLateness Percentiles `json:"reminder_lateness"`

	// Events counts the events of this run's tasks and users by type.
	Events map[string]int `json:"events"`
	// Compensations counts workflows that undid their assignment (task.unassigned),
	// ExpectedCompensations the tasks of failing assignees.
	Compensations         int `json:"compensations"`
	ExpectedCompensations int `json:"expected_compensations"`
	// WrongOutcomes lists workflows that finished the other way than their
	// assignee says they should (notified a failing one, compensated another).
	WrongOutcomes      []string `json:"wrong_outcomes,omitempty"`
	WrongOutcomesCount int      `json:"wrong_outcomes_count"`

	// RemindersDue counts tasks whose deadline had passed at the end;
	// RemindersFired counts task.overdue events of this run.
	RemindersDue   int `json:"reminders_due"`
	RemindersFired int `json:"reminders_fired"`
	// MissingReminders, DuplicateReminders and EarlyReminders list some tasks
	// whose due reminder did not fire, fired more than once, or fired before the
	// deadline; the counts are exact.
	MissingReminders        []string `json:"missing_reminders,omitempty"`
	MissingRemindersCount   int      `json:"missing_reminders_count"`
	DuplicateReminders      []string `json:"duplicate_reminders,omitempty"`
	DuplicateRemindersCount int      `json:"duplicate_reminders_count"`
	EarlyReminders          []string `json:"early_reminders,omitempty"`
	EarlyRemindersCount     int      `json:"early_reminders_count"`

	// TasksVerified and WorkflowsVerified count what was read back at the end;
	// the mismatches describe some that were not as they should be.
	TasksVerified           int      `json:"tasks_verified"`
	TaskMismatches          []string `json:"task_mismatches,omitempty"`
	TaskMismatchesCount     int      `json:"task_mismatches_count"`
	WorkflowsVerified       int      `json:"workflows_verified"`
	WorkflowMismatches      []string `json:"workflow_mismatches,omitempty"`
	WorkflowMismatchesCount int      `json:"workflow_mismatches_count"`

	// ChatsSent counts chat messages answered 200.
	ChatsSent int `json:"chats_sent"`
	// Throttled counts 429 answers to POST /tasks/process: the server had as
	// many workflows waiting to start as it accepts. Each request was sent
	// again after its Retry-After, so a throttled task is not a failure.
	Throttled int `json:"throttled"`
	// Failures counts failed requests by "METHOD route: status" (or ": error" when
	// no answer came); Status5xx counts the answers 500 and above among them.
	Failures  map[string]int `json:"failures"`
	Status5xx int            `json:"status_5xx"`
	// FailureExamples keeps the first few failure messages.
	FailureExamples []string `json:"failure_examples,omitempty"`

	// RSSBytes is the server's resident memory at the end, from GET /stats; nil
	// when the server does not report it.
	RSSBytes *int64 `json:"rss_bytes"`
	// ServerStats is the whole GET /stats answer at the end, if there was one.
	ServerStats map[string]any `json:"server_stats,omitempty"`
	// Breaker is the notifier's circuit breaker at the end, from GET /notifier.
	Breaker *BreakerStatus `json:"breaker,omitempty"`

	// Shortfalls is what Check found when the run ended, one line each.
	Shortfalls []string `json:"shortfalls"`
}

// BreakerStatus is the part of GET /notifier a run reports.
type BreakerStatus struct {
	State    string `json:"state"`
	Rejected uint64 `json:"rejected"`
}

// Check reports every shortfall of the run, joined; nil when it met every check:
// every task accepted and its workflow final with the outcome its assignee calls
// for, every due reminder fired exactly once and not early, every task read back
// as it should be, no 5xx answer, and the run neither interrupted nor out of time.
// An interrupted run is reported as that alone.
func (r Report) Check() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if r.Interrupted {
		// Everything else would fall short only for want of the time to finish.
		return errors.New("the run was interrupted: its figures are partial and were not checked")
	}
	if r.TimedOut {
		add("the run timed out before every result came in")
	}
	if r.Accepted < r.Tasks {
		add("%d of %d tasks were not accepted (202) by POST /tasks/process", r.Tasks-r.Accepted, r.Tasks)
	}
	if r.Finished < r.Tasks {
		add("%d of %d workflows did not reach a final status%s", r.Tasks-r.Finished, r.Tasks, examples(r.NotFinal))
	}
	if r.WrongOutcomesCount > 0 {
		add("%d workflows finished with the wrong outcome%s", r.WrongOutcomesCount, examples(r.WrongOutcomes))
	}
	if r.Compensations != r.ExpectedCompensations {
		add("%d compensations, want %d (one per task of a failing assignee)", r.Compensations, r.ExpectedCompensations)
	}
	if r.MissingRemindersCount > 0 {
		add("%d of %d due reminders did not fire (no task.overdue)%s", r.MissingRemindersCount, r.RemindersDue, examples(r.MissingReminders))
	}
	if r.DuplicateRemindersCount > 0 {
		add("%d tasks got more than one task.overdue%s", r.DuplicateRemindersCount, examples(r.DuplicateReminders))
	}
	if r.EarlyRemindersCount > 0 {
		add("%d reminders fired before their deadline%s", r.EarlyRemindersCount, examples(r.EarlyReminders))
	}
	if r.TaskMismatchesCount > 0 {
		add("%d of %d tasks read back wrong%s", r.TaskMismatchesCount, r.TasksVerified, examples(r.TaskMismatches))
	}
	if r.WorkflowMismatchesCount > 0 {
		add("%d of %d workflows read back wrong%s", r.WorkflowMismatchesCount, r.WorkflowsVerified, examples(r.WorkflowMismatches))
	}
	if r.Status5xx > 0 {
		add("%d answers were 5xx: %s", r.Status5xx, failureList(r.Failures, func(k string) bool { return strings.Contains(k, ": 5") }))
	}
	return errors.Join(errs...)
}

// checkExamples is how many examples a shortfall's message names; the report's
// lists keep more.
const checkExamples = 3

func examples(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return " (e.g. " + strings.Join(list[:min(len(list), checkExamples)], "; ") + ")"
}

func failureList(m map[string]int, keep func(string) bool) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if keep(k) {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// Text renders the report for people, ending with the checks.
func (r Report) Text() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("taskagent bench %s against %s", r.RunID, r.URL)
	p("  load            %d tasks across %d users (%d failing), concurrency %d, deadlines %v to %v away",
		r.Tasks, r.Users, len(r.FailAssignees), r.Concurrency, r.DeadlineSpread.D(), 2*r.DeadlineSpread.D())
	state := ""
	if r.Interrupted {
		state = " (interrupted)"
	} else if r.TimedOut {
		state = " (timed out)"
	}
	p("  elapsed         %v%s; events read by %s", r.Elapsed.D().Round(100*time.Millisecond), state, r.EventSource)
	p("  accepted        %d of %d (202)", r.Accepted, r.Tasks)
	p("  final           %d of %d: %s", r.Finished, r.Tasks, countList(r.FinalStatuses))
	p("  throughput      %.1f workflows/s; completed five-activity workflows %.1f/s", r.WorkflowsPerSecond, r.CompletedPerSecond)
	p("  workflow        %s", r.WorkflowLatency.Text(true))
	p("  submit          %s", r.SubmitLatency.Text(true))
	p("  actor call      %s  (chat message)", r.ActorCallLatency.Text(false))
	p("  GET /tasks/{id} %s", r.GetLatency.Text(false))
	p("  reminders       %d due, %d fired, %d missing, %d duplicate, %d early",
		r.RemindersDue, r.RemindersFired, r.MissingRemindersCount, r.DuplicateRemindersCount, r.EarlyRemindersCount)
	p("  lateness        p50 %s  p99 %s  max %s  (n=%d)", r.ReminderLateness.P50.D(), r.ReminderLateness.P99.D(), r.ReminderLateness.Max.D(), r.ReminderLateness.Count)
	p("  compensations   %d (want %d)", r.Compensations, r.ExpectedCompensations)
	p("  events          %s", countList(r.Events))
	p("  chats           %d sent", r.ChatsSent)
	if r.Throttled > 0 {
		p("  throttled       %d answers 429 to POST /tasks/process, each retried after its Retry-After", r.Throttled)
	}
	p("  verified        %d tasks, %d workflows", r.TasksVerified, r.WorkflowsVerified)
	if len(r.Failures) == 0 {
		p("  failures        none")
	} else {
		p("  failures        %s", failureList(r.Failures, func(string) bool { return true }))
		for _, e := range r.FailureExamples {
			p("                  %s", e)
		}
	}
	if r.RSSBytes != nil {
		p("  server RSS      %.1f MiB", float64(*r.RSSBytes)/(1<<20))
	} else {
		p("  server RSS      unknown")
	}
	if r.Breaker != nil {
		p("  breaker         %s, %d rejected", r.Breaker.State, r.Breaker.Rejected)
	}
	if err := r.Check(); err != nil {
		p("checks: FAILED")
		for _, line := range strings.Split(err.Error(), "\n") {
			p("  - %s", line)
		}
	} else {
		p("checks: passed")
	}
	return b.String()
}

func countList(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// Millis is a duration that reads and writes JSON as a number of milliseconds.
type Millis float64

// MillisOf converts d.
func MillisOf(d time.Duration) Millis { return Millis(float64(d) / float64(time.Millisecond)) }

// D converts m back to a duration, rounded to the microsecond for display.
func (m Millis) D() time.Duration {
	return time.Duration(float64(m) * float64(time.Millisecond)).Round(time.Microsecond)
}

// Percentiles summarises a set of durations; the percentiles are exact, by
// nearest rank over the sorted samples.
type Percentiles struct {
	Count int    `json:"count"`
	P50   Millis `json:"p50_ms"`
	P95   Millis `json:"p95_ms"`
	P99   Millis `json:"p99_ms"`
	Max   Millis `json:"max_ms"`
}

// Summarize computes the percentiles of samples; it sorts samples in place.
func Summarize(samples []time.Duration) Percentiles {
	if len(samples) == 0 {
		return Percentiles{}
	}
	slices.Sort(samples)
	return Percentiles{
		Count: len(samples),
		P50:   MillisOf(Rank(samples, 50)),
		P95:   MillisOf(Rank(samples, 95)),
		P99:   MillisOf(Rank(samples, 99)),
		Max:   MillisOf(samples[len(samples)-1]),
	}
}

// Rank returns the p-th percentile of sorted by nearest rank: the smallest sample
// with at least p% of the samples at or below it. sorted must be sorted and not
// empty.
func Rank(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	// The tolerance keeps float error from moving an exact rank up: 50% of 10 is 5.
	k := int(math.Ceil(p*float64(n)/100 - 1e-9))
	k = min(max(k, 1), n)
	return sorted[k-1]
}

// Text renders the percentiles on one line.
func (p Percentiles) Text(p95 bool) string {
	if p.Count == 0 {
		return "no samples"
	}
	if p95 {
		return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s  (n=%d)", p.P50.D(), p.P95.D(), p.P99.D(), p.Max.D(), p.Count)
	}
	return fmt.Sprintf("p50 %s  p99 %s  max %s  (n=%d)", p.P50.D(), p.P99.D(), p.Max.D(), p.Count)
}
