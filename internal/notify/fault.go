package notify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/taskagent/taskagent/internal/errs"
)

// Environment variables that configure fault injection. cmd reads them; the parsing
// lives here so that every program reads them the same way.
const (
	// EnvFailAssignees lists assignees whose notifications always fail,
	// comma-separated: "bob,carol".
	EnvFailAssignees = "TASKAGENT_NOTIFY_FAIL_ASSIGNEES"
	// EnvFailureRate is the fraction, 0 to 1, of other notifications that fail at
	// random: "0.2" recreates the seed tutorial's behaviour.
	EnvFailureRate = "TASKAGENT_NOTIFY_FAILURE_RATE"
)

// ParseFailAssignees parses an EnvFailAssignees value: names separated by commas,
// spaces around them trimmed, empty ones ignored, duplicates dropped, sorted. An
// empty value gives nil.
func ParseFailAssignees(s string) []string {
	return normalizeNames(strings.Split(s, ","))
}

// normalizeNames trims, drops empty names and duplicates, and sorts, so that status
// output and comparisons do not depend on how the list was typed.
func normalizeNames(in []string) []string {
	var names []string
	for _, n := range in {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// ParseFailureRate parses an EnvFailureRate value. An empty value is 0 (no random
// failures); anything that is not a number in [0, 1] is an errs.Invalid error, so
// that a typo does not silently turn failures off, or on.
func ParseFailureRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	rate, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, errs.Field(EnvFailureRate, "must be a number between 0 and 1, got %q", s)
	}
	if err := checkRate(EnvFailureRate, rate); err != nil {
		return 0, err
	}
	return rate, nil
}

func checkRate(field string, rate float64) error {
	// Written so that NaN fails too: every comparison with NaN is false.
	if !(rate >= 0 && rate <= 1) {
		return errs.Field(field, "must be between 0 and 1, got %v", rate)
	}
	return nil
}

// Faults says which notifications a FaultInjector fails.
type Faults struct {
	// FailAssignees always fail: a demo picks one user whose notification service is
	// "down" and watches retries, compensation and the breaker.
	FailAssignees []string
	// FailureRate is the probability, 0 to 1, that any other notification fails.
	FailureRate float64
	// Source, when set, makes the random failures reproducible (tests). Nil uses
	// the runtime's random generator.
	Source rand.Source
}

// FaultInjector wraps a Notifier and makes some notifications fail with
// errs.Unavailable before they reach it, as a down service would. It replaces the
// seed tutorial's hard-wired 20% random failure: off unless configured, and
// deterministic when it matters.
type FaultInjector struct {
	next  Notifier
	fail  map[string]bool
	names []string // sorted, for status
	rate  float64

	mu  sync.Mutex // guards rnd: a rand.Rand over a Source is not safe for concurrent use
	rnd *rand.Rand // nil: the package-level generator, which is
}

// NewFaultInjector wraps next. It returns errs.Invalid if f.FailureRate is outside
// [0, 1].
func NewFaultInjector(next Notifier, f Faults) (*FaultInjector, error) {
	if err := checkRate("failure_rate", f.FailureRate); err != nil {
		return nil, err
	}
	fi := &FaultInjector{
		next:  next,
		rate:  f.FailureRate,
		fail:  map[string]bool{},
		names: normalizeNames(f.FailAssignees),
	}
	for _, a := range fi.names {
		fi.fail[a] = true
	}
	if f.Source != nil {
		fi.rnd = rand.New(f.Source)
	}
	return fi, nil
}

// Name returns the wrapped notifier's name.
func (f *FaultInjector) Name() string { return f.next.Name() }

// FailAssignees returns the assignees whose notifications always fail, sorted.
func (f *FaultInjector) FailAssignees() []string { return slices.Clone(f.names) }

// FailureRate returns the probability that any other notification fails.
func (f *FaultInjector) FailureRate() float64 { return f.rate }

// Notify fails with an error wrapping ErrInjected (errs.Unavailable) when n.Assignee
// is a failing assignee (also wrapping ErrRecipient: that assignee is unreachable,
// the service is fine) or the dice say so (the service is flaky); otherwise it
// returns the wrapped notifier's result.
func (f *FaultInjector) Notify(ctx context.Context, n Notification) error {
	if f.fail[n.Assignee] {
		return fmt.Errorf("notify %s about task %s: %w (%w)", n.Assignee, n.TaskID, ErrInjected, ErrRecipient)
	}
	if f.rate > 0 && f.draw() < f.rate {
		return fmt.Errorf("notify %s about task %s: %w (rate %v)", n.Assignee, n.TaskID, ErrInjected, f.rate)
	}
	return f.next.Notify(ctx, n)
}

// draw returns a number in [0, 1). With rate 1 every draw is below the rate, with
// rate 0 none is drawn at all: the two ends are exact.
func (f *FaultInjector) draw() float64 {
	if f.rnd == nil {
		return rand.Float64()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rnd.Float64()
}
