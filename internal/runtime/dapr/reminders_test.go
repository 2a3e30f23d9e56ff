package dapr_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/runtime/dapr"
	"github.com/taskagent/taskagent/internal/runtime/dapr/daprtest"
)

// probeType is an actor type whose Arm method registers the one-shot reminder
// "r" due at the time it is given, and whose reminders report to fired.
func probeType(fired func(id string, at time.Time)) actor.Type {
	return actor.Type{
		Name: "ReminderProbe",
		Methods: map[string]actor.Method{
			"Arm": actor.Typed(func(ctx context.Context, t actor.Turn, due time.Time) (int, error) {
				t.SetReminder("r", actor.Reminder{Due: due})
				return 0, nil
			}),
		},
		Remind: func(ctx context.Context, t actor.Turn, name string, data []byte) error {
			fired(t.ActorID(), time.Now())
			return nil
		},
	}
}

// TestRemindersAreSchedulerJobs checks what deploy/ relies on with the
// SchedulerReminders feature: every reminder is a job of its own in the
// Scheduler service, none is kept in the state store (so no record grows with
// the number of reminders), a reminder fires at its due time and not before
// it, and the job of a one-shot reminder is gone once it has fired.
func TestRemindersAreSchedulerJobs(t *testing.T) {
	var mu sync.Mutex
	firedAt := map[string]time.Time{}
	c := startCluster(t, []actor.Type{probeType(func(id string, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := firedAt[id]; !ok {
			firedAt[id] = at
		}
	})}, dapr.Config{}, daprtest.SchedulerReminders)
	ctx := t.Context()

	const n = 20
	var want []string
	for i := range n {
		id := fmt.Sprintf("later-%02d", i)
		arm(t, c, id, time.Now().Add(time.Hour))
		want = append(want, "actorreminder||default||ReminderProbe||"+id+"||r")
	}
	jobs, err := c.scheduler.Jobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(jobs, want) {
		t.Fatalf("scheduler jobs after arming %d reminders:\n%q\nwant\n%q", n, jobs, want)
	}
	keys, err := c.redis.Keys("*")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.HasPrefix(k, "actors||") || strings.Contains(k, "remind") {
			t.Errorf("redis key %q: reminders are kept in the state store, want none there", k)
		}
	}

	due := time.Now().Add(1500 * time.Millisecond)
	arm(t, c, "soon", due)
	soonJob := "actorreminder||default||ReminderProbe||soon||r"
	var fired time.Time
	waitUntil(t, 20*time.Second, "the reminder of soon to fire", func() bool {
		mu.Lock()
		defer mu.Unlock()
		fired = firedAt["soon"]
		return !fired.IsZero()
	})
	if fired.Before(due) {
		t.Errorf("reminder fired %v before its due time", due.Sub(fired))
	}
	t.Logf("reminder fired %v after its due time", fired.Sub(due).Round(time.Millisecond))
	waitUntil(t, 20*time.Second, "the job of the reminder that fired to be deleted", func() bool {
		jobs, err := c.scheduler.Jobs(ctx)
		return err == nil && !slices.Contains(jobs, soonJob) && len(jobs) == n
	})
}

func arm(t *testing.T, c *cluster, id string, due time.Time) {
	t.Helper()
	in, err := json.Marshal(due)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invoke(t.Context(), "ReminderProbe", id, "Arm", in); err != nil {
		t.Fatalf("arm %s: %v", id, err)
	}
}

// waitUntil polls cond until it holds, failing the test after within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within %v", what, within)
		}
		<-tick.C
	}
}
