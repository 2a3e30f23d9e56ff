// Package actortest is the contract suite for runtimes of package actor. A runtime's
// tests call Run with a function that starts the runtime hosting the suite's actor
// types; the same suite runs unchanged against every runtime, so a behaviour that
// differs between them fails here.
package actortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/errs"
)

// Harness is a running runtime as the suite sees it.
type Harness struct {
	// Invoker calls the suite's actors.
	Invoker actor.Invoker
	// Deactivate makes the runtime drop the actor from memory, or waits until it has,
	// so that its next call activates it again from the store.
	Deactivate func(ctx context.Context, actorType, actorID string) error
}

// NewHarness starts a runtime that hosts types and stops it when t ends.
type NewHarness func(t *testing.T, types []actor.Type) Harness

// CounterType is the name of the suite's actor type.
const CounterType = "ContractCounter"

// Types returns the actor types the suite needs a runtime to host. A runtime whose
// actors live in another process registers these there.
func Types() []actor.Type { return []actor.Type{counterType()} }

// Run runs the contract suite against the runtime newHarness starts.
func Run(t *testing.T, newHarness NewHarness) {
	h := newHarness(t, Types())
	s := &suite{Harness: h}
	t.Run("TurnBased", s.turnBased)
	t.Run("ActorsRunInParallel", s.parallel)
	t.Run("StateSurvivesDeactivation", s.deactivation)
	t.Run("FailedTurnLeavesState", s.failedTurn)
	t.Run("UnknownMethod", s.unknownMethod)
	t.Run("ReminderFires", s.reminderFires)
	t.Run("PeriodicReminderRepeats", s.periodic)
	t.Run("DeletedReminderNeverFires", s.deletedReminder)
	t.Run("FailingReminderIsRetried", s.failingReminder)
}

type suite struct{ Harness }

func (s *suite) call(t *testing.T, id, method string, in any) int {
	t.Helper()
	n, err := actor.Call[int](t.Context(), s.Invoker, CounterType, id, method, in)
	if err != nil {
		t.Fatalf("%s on %s: %v", method, id, err)
	}
	return n
}

func (s *suite) turnBased(t *testing.T) {
	const calls = 1000
	id := uniqueID(t)
	results := make([]int, calls)
	errc := make(chan error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			n, err := actor.Call[int](t.Context(), s.Invoker, CounterType, id, "Incr", nil)
			results[i] = n
			errc <- err
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("Incr: %v", err)
		}
	}
	if got := s.call(t, id, "Get", nil); got != calls {
		t.Fatalf("after %d concurrent increments the counter is %d", calls, got)
	}
	seen := make([]bool, calls+1)
	for _, n := range results {
		if n < 1 || n > calls || seen[n] {
			t.Fatalf("increment returned %d twice or out of range: turns overlapped", n)
		}
		seen[n] = true
	}
}

func (s *suite) parallel(t *testing.T) {
	a, b := uniqueID(t)+"-a", uniqueID(t)+"-b"
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.Invoker.Invoke(ctx, CounterType, a, "Block", nil)
		done <- err
	}()
	waitFor(t, 10*time.Second, "actor a to block", func() bool { return gates.blocked(a) })
	// b's turn releases a's: it can only run while a's turn is still under way.
	if _, err := s.Invoker.Invoke(ctx, CounterType, b, "Release", []byte(`"`+a+`"`)); err != nil {
		t.Fatalf("Release on %s while %s runs: %v", b, a, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Block on %s: %v", a, err)
	}
}

func (s *suite) deactivation(t *testing.T) {
	id := uniqueID(t)
	for range 3 {
		s.call(t, id, "Incr", nil)
	}
	if err := s.Deactivate(t.Context(), CounterType, id); err != nil {
		t.Fatalf("deactivate: %v", err)
	}
	if got := s.call(t, id, "Get", nil); got != 3 {
		t.Fatalf("after reactivation the counter is %d, want 3", got)
	}
	if got := s.call(t, id, "Incr", nil); got != 4 {
		t.Fatalf("increment after reactivation gave %d, want 4", got)
	}
}

func (s *suite) failedTurn(t *testing.T) {
	id := uniqueID(t)
	s.call(t, id, "Incr", nil)
	_, err := s.Invoker.Invoke(t.Context(), CounterType, id, "IncrThenFail", nil)
	if errs.KindOf(err) != errs.Invalid {
		t.Fatalf("IncrThenFail: got error %v (kind %q), want kind %q", err, errs.KindOf(err), errs.Invalid)
	}
	if got := s.call(t, id, "Get", nil); got != 1 {
		t.Fatalf("after a failed turn the counter is %d, want 1", got)
	}
	if err := s.Deactivate(t.Context(), CounterType, id); err != nil {
		t.Fatalf("deactivate: %v", err)
	}
	if got := s.call(t, id, "Get", nil); got != 1 {
		t.Fatalf("after a failed turn and reactivation the counter is %d, want 1", got)
	}
}

func (s *suite) unknownMethod(t *testing.T) {
	_, err := s.Invoker.Invoke(t.Context(), CounterType, uniqueID(t), "NoSuchMethod", nil)
	if errs.KindOf(err) != errs.NotFound {
		t.Fatalf("unknown method: got %v (kind %q), want kind %q", err, errs.KindOf(err), errs.NotFound)
	}
}

// reminderSpec is the input of the counter's SetReminder method.
type reminderSpec struct {
	Name     string        `json:"name"`
	DueIn    time.Duration `json:"due_in"`
	Period   time.Duration `json:"period,omitempty"`
	FailRuns int           `json:"fail_runs,omitempty"` // callbacks that fail before one succeeds
}

func (s *suite) reminderFires(t *testing.T) {
	id := uniqueID(t)
	start := time.Now()
	s.call(t, id, "SetReminder", reminderSpec{Name: "once", DueIn: 200 * time.Millisecond})
	waitFor(t, 10*time.Second, "the reminder to fire", func() bool { return s.call(t, id, "Fired", "once") == 1 })
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("reminder fired after %v, before its due time", d)
	}
	// A later reminder firing shows time has passed the first one's period: a
	// one-shot reminder must still have fired exactly once.
	s.call(t, id, "SetReminder", reminderSpec{Name: "later", DueIn: 300 * time.Millisecond})
	waitFor(t, 10*time.Second, "the later reminder to fire", func() bool { return s.call(t, id, "Fired", "later") == 1 })
	if got := s.call(t, id, "Fired", "once"); got != 1 {
		t.Fatalf("one-shot reminder fired %d times", got)
	}
}

func (s *suite) periodic(t *testing.T) {
	id := uniqueID(t)
	// The delete follows a tick at once and the period is far longer than a
	// delete takes, so the next tick never comes due during the delete: Dapr
	// 1.14.0's Scheduler service can stop scheduling for good when a job comes
	// due while it is being deleted (see reminderRetry in the Dapr runtime's
	// contract test).
	s.call(t, id, "SetReminder", reminderSpec{Name: "tick", DueIn: 50 * time.Millisecond, Period: time.Second})
	waitFor(t, 15*time.Second, "three ticks", func() bool { return s.call(t, id, "Fired", "tick") >= 3 })
	s.call(t, id, "DeleteReminder", "tick")
	after := s.call(t, id, "Fired", "tick")
	s.call(t, id, "SetReminder", reminderSpec{Name: "sentinel", DueIn: 500 * time.Millisecond})
	waitFor(t, 10*time.Second, "the sentinel", func() bool { return s.call(t, id, "Fired", "sentinel") == 1 })
	if got := s.call(t, id, "Fired", "tick"); got != after {
		t.Fatalf("deleted periodic reminder went on firing: %d ticks, then %d", after, got)
	}
}

func (s *suite) deletedReminder(t *testing.T) {
	id := uniqueID(t)
	s.call(t, id, "SetReminder", reminderSpec{Name: "doomed", DueIn: 300 * time.Millisecond})
	s.call(t, id, "DeleteReminder", "doomed")
	s.call(t, id, "SetReminder", reminderSpec{Name: "sentinel", DueIn: 800 * time.Millisecond})
	waitFor(t, 10*time.Second, "the sentinel", func() bool { return s.call(t, id, "Fired", "sentinel") == 1 })
	if got := s.call(t, id, "Fired", "doomed"); got != 0 {
		t.Fatalf("deleted reminder fired %d times", got)
	}
}

func (s *suite) failingReminder(t *testing.T) {
	id := uniqueID(t)
	s.call(t, id, "SetReminder", reminderSpec{Name: "flaky", DueIn: 50 * time.Millisecond, FailRuns: 2})
	waitFor(t, 30*time.Second, "the flaky reminder to succeed", func() bool { return s.call(t, id, "Fired", "flaky") == 1 })
	if got := attempts.get(id + "/flaky"); got != 3 {
		t.Fatalf("flaky reminder ran %d times, want 3 (2 failures, then success)", got)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var idSeq struct {
	sync.Mutex
	n int
}

func uniqueID(t *testing.T) string {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.n++
	return fmt.Sprintf("%d-%d", time.Now().UnixNano(), idSeq.n)
}

// counterType is the suite's actor: a counter with reminders that count their
// callbacks. What must outlive a failed turn (how often a callback ran, gates for
// the parallelism test) lives in process memory, since a failed turn's state is
// discarded by contract; the suite's actors always run in the test process.
func counterType() actor.Type {
	incr := func(ctx context.Context, t actor.Turn) (int, error) {
		var n int
		if _, err := t.Get(ctx, "n", &n); err != nil {
			return 0, err
		}
		n++
		return n, t.Set("n", n)
	}
	return actor.Type{
		Name: CounterType,
		Methods: map[string]actor.Method{
			"Incr": actor.Typed(func(ctx context.Context, t actor.Turn, _ struct{}) (int, error) {
				return incr(ctx, t)
			}),
			"Get": actor.Typed(func(ctx context.Context, t actor.Turn, _ struct{}) (int, error) {
				var n int
				_, err := t.Get(ctx, "n", &n)
				return n, err
			}),
			"IncrThenFail": actor.Typed(func(ctx context.Context, t actor.Turn, _ struct{}) (int, error) {
				if _, err := incr(ctx, t); err != nil {
					return 0, err
				}
				if err := t.Publish("contract", "counter.failed", map[string]string{"id": t.ActorID()}); err != nil {
					return 0, err
				}
				t.SetReminder("never", actor.Reminder{Due: t.Now().Add(50 * time.Millisecond)})
				return 0, errs.E(errs.Invalid, "failure requested")
			}),
			"Block": actor.Typed(func(ctx context.Context, t actor.Turn, _ struct{}) (int, error) {
				return 0, gates.block(ctx, t.ActorID())
			}),
			"Release": actor.Typed(func(ctx context.Context, t actor.Turn, other string) (int, error) {
				gates.release(other)
				return 0, nil
			}),
			"SetReminder": actor.Typed(func(ctx context.Context, t actor.Turn, r reminderSpec) (int, error) {
				data, _ := json.Marshal(r)
				t.SetReminder(r.Name, actor.Reminder{Due: t.Now().Add(r.DueIn), Period: r.Period, Data: data})
				return 0, nil
			}),
			"DeleteReminder": actor.Typed(func(ctx context.Context, t actor.Turn, name string) (int, error) {
				t.DeleteReminder(name)
				return 0, nil
			}),
			"Fired": actor.Typed(func(ctx context.Context, t actor.Turn, name string) (int, error) {
				var n int
				_, err := t.Get(ctx, "fired/"+name, &n)
				return n, err
			}),
		},
		Remind: func(ctx context.Context, t actor.Turn, name string, data []byte) error {
			var r reminderSpec
			if err := json.Unmarshal(data, &r); err != nil {
				return fmt.Errorf("reminder %s: %w", name, err)
			}
			if run := attempts.add(t.ActorID() + "/" + name); run <= r.FailRuns {
				return errors.New("failure requested")
			}
			var n int
			if _, err := t.Get(ctx, "fired/"+name, &n); err != nil {
				return err
			}
			return t.Set("fired/"+name, n+1)
		},
	}
}

// attempts counts reminder callbacks per actor and reminder, failed ones included.
var attempts = counts{m: make(map[string]int)}

type counts struct {
	sync.Mutex
	m map[string]int
}

func (c *counts) add(k string) int {
	c.Lock()
	defer c.Unlock()
	c.m[k]++
	return c.m[k]
}

func (c *counts) get(k string) int {
	c.Lock()
	defer c.Unlock()
	return c.m[k]
}

// gates lets one actor's turn wait until another actor's turn releases it.
var gates = gateSet{m: make(map[string]chan struct{})}

type gateSet struct {
	sync.Mutex
	m       map[string]chan struct{}
	waiting map[string]bool
}

func (g *gateSet) ch(id string) chan struct{} {
	if g.m[id] == nil {
		g.m[id] = make(chan struct{})
	}
	return g.m[id]
}

func (g *gateSet) block(ctx context.Context, id string) error {
	g.Lock()
	ch := g.ch(id)
	if g.waiting == nil {
		g.waiting = make(map[string]bool)
	}
	g.waiting[id] = true
	g.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return errs.E(errs.Unavailable, "blocked turn cancelled: %v", ctx.Err())
	}
}

func (g *gateSet) blocked(id string) bool {
	g.Lock()
	defer g.Unlock()
	return g.waiting[id]
}

func (g *gateSet) release(id string) {
	g.Lock()
	defer g.Unlock()
	close(g.ch(id))
}
