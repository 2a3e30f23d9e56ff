package notify_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/notify"
)

func newFaults(t *testing.T, next notify.Notifier, f notify.Faults) *notify.FaultInjector {
	t.Helper()
	fi, err := notify.NewFaultInjector(next, f)
	if err != nil {
		t.Fatalf("NewFaultInjector: %v", err)
	}
	return fi
}

func TestFaultInjectorFailAssignees(t *testing.T) {
	inner := &fakeNotifier{}
	fi := newFaults(t, inner, notify.Faults{FailAssignees: []string{" bob ", "carol", ""}})
	ctx := context.Background()

	for _, who := range []string{"bob", "carol"} {
		err := fi.Notify(ctx, note("wf-1", who))
		wantKind(t, err, errs.Unavailable)
		if !errors.Is(err, notify.ErrInjected) {
			t.Errorf("Notify(%s): got %v, want an injected failure", who, err)
		}
	}
	if got := inner.calls.Load(); got != 0 {
		t.Fatalf("inner calls after failing assignees: got %d, want 0", got)
	}
	if err := fi.Notify(ctx, note("wf-2", "alice")); err != nil {
		t.Fatalf("Notify(alice): %v", err)
	}
	if got := inner.calls.Load(); got != 1 {
		t.Errorf("inner calls: got %d, want 1", got)
	}
	if got, want := fi.FailAssignees(), []string{"bob", "carol"}; !slices.Equal(got, want) {
		t.Errorf("FailAssignees: got %q, want %q", got, want)
	}
}

func TestFaultInjectorRateEnds(t *testing.T) {
	for _, tt := range []struct {
		rate      float64
		wantFails int
	}{
		{0, 0},
		{1, 1000},
	} {
		inner := &fakeNotifier{}
		// No Source: the ends must be exact whatever the generator says.
		fi := newFaults(t, inner, notify.Faults{FailureRate: tt.rate})
		fails := 0
		for range 1000 {
			if err := fi.Notify(context.Background(), note("wf", "alice")); err != nil {
				wantKind(t, err, errs.Unavailable)
				fails++
			}
		}
		if fails != tt.wantFails {
			t.Errorf("rate %v: got %d failures of 1000, want %d", tt.rate, fails, tt.wantFails)
		}
		if got := inner.calls.Load(); got != int64(1000-tt.wantFails) {
			t.Errorf("rate %v: inner calls got %d, want %d", tt.rate, got, 1000-tt.wantFails)
		}
	}
}

func TestFaultInjectorSeededIsReproducible(t *testing.T) {
	const rate = 0.3
	inner := &fakeNotifier{}
	fi := newFaults(t, inner, notify.Faults{FailureRate: rate, Source: rand.NewPCG(1, 2)})
	want := rand.New(rand.NewPCG(1, 2)) // the same source: the same failures

	fails := 0
	for i := range 200 {
		err := fi.Notify(context.Background(), note("wf", "alice"))
		if wantFail := want.Float64() < rate; (err != nil) != wantFail {
			t.Fatalf("call %d: got error %v, want failure %v", i, err, wantFail)
		}
		if err != nil {
			fails++
		}
	}
	if fails == 0 || fails == 200 {
		t.Errorf("failures: got %d of 200, want some but not all", fails)
	}
}

func TestFaultInjectorConcurrentSeeded(t *testing.T) {
	fi := newFaults(t, &fakeNotifier{}, notify.Faults{FailureRate: 0.5, Source: rand.NewPCG(3, 4)})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_ = fi.Notify(context.Background(), note("wf", "alice"))
			}
		})
	}
	wg.Wait()
}

func TestNewFaultInjectorRejectsBadRate(t *testing.T) {
	for _, rate := range []float64{-0.01, 1.01, math.NaN(), math.Inf(1)} {
		_, err := notify.NewFaultInjector(&fakeNotifier{}, notify.Faults{FailureRate: rate})
		wantKind(t, err, errs.Invalid)
	}
}

func TestParseFailAssignees(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"bob", []string{"bob"}},
		{" bob , alice,,bob ", []string{"alice", "bob"}},
	} {
		if got := notify.ParseFailAssignees(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("ParseFailAssignees(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseFailureRate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want float64
	}{
		{"", 0},
		{"0", 0},
		{"0.2", 0.2},
		{" 0.5 ", 0.5},
		{"1", 1},
		{"1e-1", 0.1},
	} {
		got, err := notify.ParseFailureRate(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseFailureRate(%q): got %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"abc", "-0.1", "1.01", "20%", "NaN", "Inf", "0,2"} {
		got, err := notify.ParseFailureRate(in)
		if err == nil {
			t.Errorf("ParseFailureRate(%q): got %v, want an error", in, got)
			continue
		}
		wantKind(t, err, errs.Invalid)
		if !strings.Contains(err.Error(), notify.EnvFailureRate) {
			t.Errorf("ParseFailureRate(%q): error %q does not name %s", in, err, notify.EnvFailureRate)
		}
	}
}
