package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/bench"
)

// TestBench runs "taskagent bench" in-process against the real server: 200 tasks
// across 10 users, one of whom (user-010) the server fails to notify. Every
// workflow must finish, the failing user's 20 tasks by compensation, and every
// task's deadline reminder must fire once.
//
// Deadlines are 2 to 4 s away: a deadline that has passed by the time a queued
// workflow reaches its set-deadline step still counts, and the task goes overdue.
func TestBench(t *testing.T) {
	const tasks, users = 200, 10
	p := start(t, t.TempDir(),
		bench.EnvFailAssignees+"="+bench.FailAssigneesEnv(users, bench.DefaultFailShare),
		"TASKAGENT_NOTIFY_BACKOFF=50ms",
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	stderr := &logBuffer{} // progress is written from several goroutines
	err := run(ctx, []string{"bench", "--url", p.base, "--tasks", "200", "--users", "10",
		"--deadline-spread", "2s", "--json"}, func(string) string { return "" }, &stdout, stderr)
	if err != nil {
		t.Fatalf("bench: %v\nprogress:\n%s\nreport:\n%s", err, stderr, stdout.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, stdout.String())
	}
	t.Logf("report:\n%s", rep.Text())
	const failing = tasks / users // the last user's share
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"accepted", rep.Accepted, tasks},
		{"finished", rep.Finished, tasks},
		{"completed", rep.FinalStatuses["completed"], tasks - failing},
		{"failed", rep.FinalStatuses["failed"], failing},
		{"compensations", rep.Compensations, failing},
		{"task.notified events", rep.Events["task.notified"], tasks - failing},
		{"task.overdue events", rep.Events["task.overdue"], tasks},
		{"reminders due", rep.RemindersDue, tasks},
		{"conversation.updated events", rep.Events["conversation.updated"], users * bench.DefaultChatsPerUser},
		{"chats sent", rep.ChatsSent, users * bench.DefaultChatsPerUser},
		{"tasks verified", rep.TasksVerified, tasks},
		{"workflow latency samples", rep.WorkflowLatency.Count, tasks},
		{"failures", len(rep.Failures), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, c.got, c.want)
		}
	}
	if len(rep.Shortfalls) != 0 {
		t.Errorf("shortfalls: %q", rep.Shortfalls)
	}
	if rep.WorkflowsPerSecond <= 0 || rep.ActorCallLatency.Count == 0 || rep.ReminderLateness.Count != tasks {
		t.Errorf("missing figures: %.1f workflows/s, %d chat samples, %d lateness samples",
			rep.WorkflowsPerSecond, rep.ActorCallLatency.Count, rep.ReminderLateness.Count)
	}
	// The completed workflows are a subset of the finished ones, measured over a
	// span that ends no later.
	if want := rep.WorkflowsPerSecond * float64(tasks-failing) / tasks; rep.CompletedPerSecond < want {
		t.Errorf("completed_per_second = %.1f, want at least %.1f (%.1f workflows/s, %d of %d completed)",
			rep.CompletedPerSecond, want, rep.WorkflowsPerSecond, tasks-failing, tasks)
	}
	if rep.RSSBytes == nil || *rep.RSSBytes <= 0 {
		t.Errorf("rss_bytes = %v, want the server's RSS", rep.RSSBytes)
	}
}

// TestBenchPrintFailAssignees checks the value the server must be started with.
func TestBenchPrintFailAssignees(t *testing.T) {
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"bench", "--print-fail-assignees", "--users", "40", "--fail-share", "0.05"},
		func(string) string { return "" }, &stdout, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stdout.String(), "user-039@example.com,user-040@example.com\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestBenchCheckShortfall checks that Check names a reminder that did not fire,
// and that a report without shortfalls passes.
func TestBenchCheckShortfall(t *testing.T) {
	ok := bench.Report{
		Tasks: 2, Accepted: 2, Finished: 2,
		FinalStatuses: map[string]int{"completed": 2},
		RemindersDue:  2, RemindersFired: 2,
	}
	if err := ok.Check(); err != nil {
		t.Fatalf("clean report: %v", err)
	}
	missing := ok
	missing.RemindersFired = 1
	missing.MissingReminders = []string{"bench-x-00002"}
	missing.MissingRemindersCount = 1
	err := missing.Check()
	if err == nil {
		t.Fatal("a missing reminder passed the checks")
	}
	if !strings.Contains(err.Error(), "1 of 2 due reminders did not fire") || !strings.Contains(err.Error(), "bench-x-00002") {
		t.Fatalf("error = %q, want it to name the missing reminder", err)
	}
	if !strings.Contains(missing.Text(), "checks: FAILED") {
		t.Fatalf("text report does not show the failed check:\n%s", missing.Text())
	}
}

// TestBenchRefusesWrongServer checks that a run against a server that does not
// fail the run's failing assignees stops before the load, saying how to start it.
func TestBenchRefusesWrongServer(t *testing.T) {
	p := start(t, t.TempDir())
	err := run(context.Background(), []string{"bench", "--url", p.base, "--tasks", "10", "--users", "10"},
		func(string) string { return "" }, &bytes.Buffer{}, &logBuffer{})
	if err == nil || !strings.Contains(err.Error(), "TASKAGENT_NOTIFY_FAIL_ASSIGNEES=user-010@example.com") {
		t.Fatalf("err = %v, want advice to set TASKAGENT_NOTIFY_FAIL_ASSIGNEES", err)
	}
}
