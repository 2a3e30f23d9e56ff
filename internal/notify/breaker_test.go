package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/notify"
)

func TestBreakerOpensAfterConsecutiveTransientFailures(t *testing.T) {
	inner := &fakeNotifier{}
	inner.fail(errDown)
	logs := &syncBuffer{}
	b := notify.NewBreaker(inner, notify.BreakerSettings{Name: "test", Failures: 3, OpenTimeout: time.Hour},
		slog.New(slog.NewJSONHandler(logs, nil)))
	ctx := context.Background()

	for i := range 3 {
		err := b.Notify(ctx, note("wf", "alice"))
		if !errors.Is(err, errDown) || errors.Is(err, notify.ErrCircuitOpen) {
			t.Fatalf("call %d: got %v, want the inner error", i, err)
		}
	}
	if got := b.State().State; got != "open" {
		t.Fatalf("state after 3 failures: got %q, want open", got)
	}

	// Fails fast: the inner notifier is not called any more.
	for range 10 {
		err := b.Notify(ctx, note("wf", "alice"))
		wantKind(t, err, errs.Unavailable)
		if !errors.Is(err, notify.ErrCircuitOpen) {
			t.Fatalf("open circuit: got %v, want ErrCircuitOpen", err)
		}
	}
	if got := inner.calls.Load(); got != 3 {
		t.Errorf("inner calls: got %d, want 3", got)
	}
	st := b.State()
	if st.Rejected != 10 {
		t.Errorf("rejected: got %d, want 10", st.Rejected)
	}
	if st.OpenUntil == nil || st.OpenUntil.Sub(st.Since) != time.Hour {
		t.Errorf("open_until: got %v (since %v), want since + 1h", st.OpenUntil, st.Since)
	}
	if !strings.Contains(logs.String(), `"to":"open"`) {
		t.Errorf("no state change logged; logs:\n%s", logs)
	}
}

func TestBreakerIgnoresPermanentFailures(t *testing.T) {
	inner := &fakeNotifier{}
	b := notify.NewBreaker(inner, notify.BreakerSettings{Failures: 2, OpenTimeout: time.Hour}, discard())
	ctx := context.Background()

	for _, err := range []error{errs.E(errs.Invalid, "receiver rejected it"), errors.New("a bug of ours")} {
		inner.fail(err)
		for range 10 {
			if got := b.Notify(ctx, note("wf", "alice")); !errors.Is(got, err) {
				t.Fatalf("got %v, want %v", got, err)
			}
		}
	}
	if got := inner.calls.Load(); got != 20 {
		t.Errorf("inner calls: got %d, want 20", got)
	}
	// A rejection proves the service is up: it breaks a run of transient failures.
	for _, err := range []error{errDown, errs.E(errs.Invalid, "no"), errDown} {
		inner.fail(err)
		_ = b.Notify(ctx, note("wf", "alice"))
	}
	if st := b.State(); st.State != "closed" || st.Counts.ConsecutiveFailures != 1 {
		t.Errorf("state: got %q with %d consecutive failures, want closed with 1", st.State, st.Counts.ConsecutiveFailures)
	}
}

func TestBreakerIgnoresCallersThatGaveUp(t *testing.T) {
	inner := &fakeNotifier{}
	b := notify.NewBreaker(inner, notify.BreakerSettings{Failures: 1, OpenTimeout: time.Hour}, discard())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 3 {
		err := b.Notify(ctx, note("wf", "alice"))
		wantKind(t, err, errs.Unavailable)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want it to wrap context.Canceled", err)
		}
	}
	if st := b.State(); st.State != "closed" || st.Counts.Requests != 0 || inner.calls.Load() != 0 {
		t.Errorf("got state %q, %d requests, %d inner calls; want closed, 0, 0", st.State, st.Counts.Requests, inner.calls.Load())
	}
}

// tripped returns a breaker with a tiny open timeout, opened by one failure, and
// waits until the timeout has let it go half-open.
func tripped(t *testing.T, inner *fakeNotifier) (*notify.Breaker, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	b := notify.NewBreaker(inner, notify.BreakerSettings{Failures: 1, OpenTimeout: time.Millisecond},
		slog.New(slog.NewJSONHandler(logs, nil)))
	inner.fail(errDown)
	if err := b.Notify(context.Background(), note("wf", "alice")); !errors.Is(err, errDown) {
		t.Fatalf("tripping call: got %v, want %v", err, errDown)
	}
	waitFor(t, "half-open", func() bool { return b.State().State == "half-open" })
	return b, logs
}

func TestBreakerHalfOpenSuccessCloses(t *testing.T) {
	inner := &fakeNotifier{}
	b, _ := tripped(t, inner)
	st := b.State()
	if st.OpenUntil != nil {
		t.Errorf("half-open state has open_until %v", st.OpenUntil)
	}
	inner.fail(nil)
	if err := b.Notify(context.Background(), note("wf", "alice")); err != nil {
		t.Fatalf("trial request: %v", err)
	}
	if got := inner.calls.Load(); got != 2 {
		t.Errorf("inner calls: got %d, want 2", got)
	}
	if got := b.State().State; got != "closed" {
		t.Errorf("state after a successful trial: got %q, want closed", got)
	}
}

func TestBreakerHalfOpenFailureReopens(t *testing.T) {
	inner := &fakeNotifier{}
	b, logs := tripped(t, inner)
	if err := b.Notify(context.Background(), note("wf", "alice")); !errors.Is(err, errDown) {
		t.Fatalf("trial request: got %v, want %v", err, errDown)
	}
	// With a 1ms timeout the circuit may be half-open again by now; the log shows it
	// went back to open first.
	if got := strings.Count(logs.String(), `"from":"half-open","to":"open"`); got != 1 {
		t.Errorf("half-open -> open changes logged: got %d, want 1; logs:\n%s", got, logs)
	}
	if got := inner.calls.Load(); got != 2 {
		t.Errorf("inner calls: got %d, want 2", got)
	}
}

func TestBreakerHalfOpenAllowsOneTrial(t *testing.T) {
	inner := &fakeNotifier{}
	b, _ := tripped(t, inner)

	entered, release := make(chan struct{}), make(chan struct{})
	inner.mu.Lock()
	inner.err = func(notify.Notification) error {
		close(entered)
		<-release
		return nil
	}
	inner.mu.Unlock()

	done := make(chan error)
	go func() { done <- b.Notify(context.Background(), note("wf-trial", "alice")) }()
	<-entered

	err := b.Notify(context.Background(), note("wf-other", "alice"))
	wantKind(t, err, errs.Unavailable)
	if !errors.Is(err, notify.ErrCircuitOpen) {
		t.Errorf("second request while half-open: got %v, want ErrCircuitOpen", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("trial request: %v", err)
	}
	if got := inner.calls.Load(); got != 2 {
		t.Errorf("inner calls: got %d, want 2 (the tripping call and the trial)", got)
	}
	if got := b.State().State; got != "closed" {
		t.Errorf("state: got %q, want closed", got)
	}
}

func TestBreakerStateJSON(t *testing.T) {
	inner := &fakeNotifier{}
	inner.fail(errDown)
	b := notify.NewBreaker(inner, notify.BreakerSettings{Name: "notify-webhook", Failures: 2, OpenTimeout: time.Minute}, discard())
	_ = b.Notify(context.Background(), note("wf", "alice"))

	var closed map[string]any
	decode(t, b.State(), &closed)
	if closed["state"] != "closed" || closed["name"] != "notify-webhook" {
		t.Errorf("closed state: got %v", closed)
	}
	if _, ok := closed["open_until"]; ok {
		t.Errorf("closed state has open_until: %v", closed)
	}
	counts, _ := closed["counts"].(map[string]any)
	for key, want := range map[string]float64{
		"requests": 1, "total_failures": 1, "consecutive_failures": 1,
		"total_successes": 0, "consecutive_successes": 0,
	} {
		if got, ok := counts[key].(float64); !ok || got != want {
			t.Errorf("counts.%s: got %v, want %v", key, counts[key], want)
		}
	}

	_ = b.Notify(context.Background(), note("wf", "alice"))
	var open map[string]any
	decode(t, b.State(), &open)
	for key, want := range map[string]any{
		"state": "open", "failures_to_open": 2.0, "open_timeout": "1m0s", "half_open_requests": 1.0, "rejected": 0.0,
	} {
		if open[key] != want {
			t.Errorf("%s: got %v, want %v", key, open[key], want)
		}
	}
	for _, key := range []string{"since", "open_until"} {
		s, _ := open[key].(string)
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			t.Errorf("%s: got %v, want an RFC 3339 time", key, open[key])
		}
	}
}

func decode(t *testing.T, v any, into any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
}
