package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker"

	"github.com/taskagent/taskagent/internal/errs"
)

// Breaker defaults.
const (
	// DefaultBreakerFailures is how many consecutive transient failures open the
	// circuit: more than the attempts one workflow makes for one notification (3 in
	// the seed's retry policy), so that one unlucky task does not cut everybody
	// off, and few enough to stop a storm.
	DefaultBreakerFailures = 5
	// DefaultBreakerOpenTimeout is how long an open circuit refuses requests before
	// it lets a trial request through.
	DefaultBreakerOpenTimeout = 30 * time.Second
	// DefaultBreakerHalfOpenRequests is how many trial requests a half-open circuit
	// lets through; that many successes in a row close it.
	DefaultBreakerHalfOpenRequests = 1
)

// BreakerSettings configures a Breaker. Zero or negative values take the defaults.
type BreakerSettings struct {
	// Name identifies the breaker in logs and status.
	Name string
	// Failures is the number of consecutive transient failures that opens the circuit.
	Failures int
	// OpenTimeout is how long the circuit stays open before going half-open.
	OpenTimeout time.Duration
	// HalfOpenRequests is how many trial requests pass while half-open.
	HalfOpenRequests int
}

func (s BreakerSettings) withDefaults() BreakerSettings {
	if s.Name == "" {
		s.Name = "notify"
	}
	if s.Failures <= 0 {
		s.Failures = DefaultBreakerFailures
	}
	if s.OpenTimeout <= 0 {
		s.OpenTimeout = DefaultBreakerOpenTimeout
	}
	if s.HalfOpenRequests <= 0 {
		s.HalfOpenRequests = DefaultBreakerHalfOpenRequests
	}
	return s
}

// Breaker is a circuit breaker around a Notifier. When the notification service is
// dead, every task-processing workflow would otherwise spend its retries and backoff on
// it and then compensate; with the circuit open they fail at once, and the service
// gets room to recover.
//
// Only errs.Unavailable failures count against the circuit. An errs.Invalid error
// means the service answered and rejected one notification: it counts as a success
// (the service is up), so a run of bad notifications never cuts off good ones. Other
// errors are our bugs, not the service's outage, and count as successes too.
type Breaker struct {
	next     Notifier
	settings BreakerSettings
	logger   *slog.Logger
	cb       *gobreaker.CircuitBreaker
	rejected atomic.Uint64

	// Written by onStateChange, which gobreaker calls with its own lock held: never
	// call cb while holding mu, or the two locks could be taken in both orders.
	mu        sync.Mutex
	state     gobreaker.State
	since     time.Time
	openUntil time.Time
}

// NewBreaker wraps next in a circuit breaker. State changes are logged to logger (nil
// means slog.Default()).
func NewBreaker(next Notifier, s BreakerSettings, logger *slog.Logger) *Breaker {
	s = s.withDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	b := &Breaker{
		next:     next,
		settings: s,
		logger:   logger,
		state:    gobreaker.StateClosed,
		since:    time.Now(),
	}
	failures := uint32(min(s.Failures, math.MaxInt32))
	b.cb = gobreaker.NewCircuitBreaker(gobreaker.Settings{
		Name:        s.Name,
		MaxRequests: uint32(min(s.HalfOpenRequests, math.MaxInt32)),
		Timeout:     s.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= failures
		},
		IsSuccessful: func(err error) bool {
			return errs.KindOf(err) != errs.Unavailable || errors.Is(err, ErrRecipient)
		},
		OnStateChange: b.onStateChange,
	})
	return b
}

// Name returns the wrapped notifier's name.
func (b *Breaker) Name() string { return b.next.Name() }

// Notify passes n to the wrapped notifier while the circuit is closed, and while it is
// half-open for the allowed trial requests. Otherwise it fails at once, without
// calling the wrapped notifier, with an error wrapping ErrCircuitOpen
// (errs.Unavailable). Errors from the wrapped notifier come back unchanged. If ctx is
// already done it returns errs.Unavailable wrapping ctx.Err(), without trying and
// without counting.
func (b *Breaker) Notify(ctx context.Context, n Notification) error {
	// A caller that has already given up (shutdown, a cancelled workflow) says
	// nothing about the service: keep it out of the counts. A timeout that runs out
	// during the attempt does count: that is the service being slow.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", errs.E(errs.Unavailable, "notify %s: %v", n.Assignee, err), err)
	}
	_, err := b.cb.Execute(func() (any, error) {
		return nil, b.next.Notify(ctx, n)
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState):
		b.rejected.Add(1)
		return fmt.Errorf("notifier %s: %w", b.settings.Name, ErrCircuitOpen)
	case errors.Is(err, gobreaker.ErrTooManyRequests):
		b.rejected.Add(1)
		return fmt.Errorf("notifier %s: half-open, trial request in flight: %w", b.settings.Name, ErrCircuitOpen)
	}
	return err
}

func (b *Breaker) onStateChange(name string, from, to gobreaker.State) {
	now := time.Now()
	b.mu.Lock()
	// gobreaker moves from open to half-open lazily, at the first look after the
	// timeout; the circuit really became half-open when the timeout ran out.
	since := now
	if to == gobreaker.StateHalfOpen && !b.openUntil.IsZero() && b.openUntil.Before(now) {
		since = b.openUntil
	}
	b.state, b.since, b.openUntil = to, since, time.Time{}
	if to == gobreaker.StateOpen {
		b.openUntil = now.Add(b.settings.OpenTimeout)
	}
	openUntil := b.openUntil
	b.mu.Unlock()

	level := slog.LevelInfo
	attrs := []slog.Attr{
		slog.String("breaker", name),
		slog.String("from", from.String()),
		slog.String("to", to.String()),
	}
	if to == gobreaker.StateOpen {
		level = slog.LevelWarn
		attrs = append(attrs, slog.Time("open_until", openUntil))
	}
	b.logger.LogAttrs(context.Background(), level, "notifier circuit state changed", attrs...)
}

// BreakerCounts are the requests and outcomes the breaker has seen since its last
// state change.
type BreakerCounts struct {
	Requests             uint32 `json:"requests"`
	TotalSuccesses       uint32 `json:"total_successes"`
	TotalFailures        uint32 `json:"total_failures"`
	ConsecutiveSuccesses uint32 `json:"consecutive_successes"`
	ConsecutiveFailures  uint32 `json:"consecutive_failures"`
}

// BreakerState is a snapshot of a Breaker, as served by GET /notifier.
type BreakerState struct {
	Name string `json:"name"`
	// State is "closed" (requests pass), "open" (requests fail fast) or "half-open"
	// (trial requests pass).
	State  string        `json:"state"`
	Counts BreakerCounts `json:"counts"`
	// Rejected counts requests refused without a try since the breaker was made.
	Rejected uint64 `json:"rejected"`
	// Since is when the breaker entered State (or was made).
	Since time.Time `json:"since"`
	// OpenUntil is when an open circuit will let a trial request through.
	OpenUntil *time.Time `json:"open_until,omitempty"`
	// Failures, OpenTimeout and HalfOpenRequests are the settings, so that the
	// status explains itself. OpenTimeout is a Go duration string ("30s").
	Failures         int    `json:"failures_to_open"`
	OpenTimeout      string `json:"open_timeout"`
	HalfOpenRequests int    `json:"half_open_requests"`
}

// State returns a snapshot of the breaker. Looking at it moves an open circuit whose
// timeout has run out to half-open.
func (b *Breaker) State() BreakerState {
	// cb first, without mu: this is what triggers a due open -> half-open change,
	// whose callback takes mu.
	_ = b.cb.State()
	c := b.cb.Counts()

	b.mu.Lock()
	st := BreakerState{
		Name:  b.settings.Name,
		State: b.state.String(),
		Since: b.since,
	}
	if !b.openUntil.IsZero() {
		t := b.openUntil
		st.OpenUntil = &t
	}
	b.mu.Unlock()

	st.Counts = BreakerCounts{
		Requests:             c.Requests,
		TotalSuccesses:       c.TotalSuccesses,
		TotalFailures:        c.TotalFailures,
		ConsecutiveSuccesses: c.ConsecutiveSuccesses,
		ConsecutiveFailures:  c.ConsecutiveFailures,
	}
	st.Rejected = b.rejected.Load()
	st.Failures = b.settings.Failures
	st.OpenTimeout = b.settings.OpenTimeout.String()
	st.HalfOpenRequests = b.settings.HalfOpenRequests
	return st
}
