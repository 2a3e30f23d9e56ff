package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/taskagent/taskagent/internal/errs"
)

// Notifier kinds, as configured.
const (
	KindLog     = "log"
	KindWebhook = "webhook"
)

// Config says how notifications are delivered. The zero value is valid: log
// notifications, no injected failures, default breaker.
type Config struct {
	// Kind is KindLog (the default) or KindWebhook.
	Kind string
	// URL is the webhook's target; required for KindWebhook, unused otherwise.
	URL string
	// Timeout bounds each delivery attempt; DefaultTimeout when zero.
	Timeout time.Duration

	// FailAssignees and FailureRate inject failures (see Faults); both off by default.
	FailAssignees []string
	FailureRate   float64

	// BreakerFailures, BreakerOpenTimeout and BreakerHalfOpenRequests configure the
	// circuit breaker (see BreakerSettings); zero takes the default.
	BreakerFailures         int
	BreakerOpenTimeout      time.Duration
	BreakerHalfOpenRequests int

	// Publish is the Log notifier's hook, wired by the caller to publish a
	// "task.notified" event. Unused by webhooks: their receiver is the audience.
	Publish func(ctx context.Context, n Notification) error
	// RandSource makes random failures reproducible in tests; nil in production.
	RandSource rand.Source
}

// Validate reports every problem with c at once, as errs.Invalid errors.
func (c Config) Validate() error {
	var problems []error
	switch c.Kind {
	case "", KindLog:
	case KindWebhook:
		if _, err := parseWebhookURL(c.URL); err != nil {
			problems = append(problems, err)
		}
	default:
		problems = append(problems, errs.Field("kind", "must be %q or %q, got %q", KindLog, KindWebhook, c.Kind))
	}
	if c.Timeout < 0 {
		problems = append(problems, errs.Field("timeout", "must not be negative, got %s", c.Timeout))
	}
	if err := checkRate("failure_rate", c.FailureRate); err != nil {
		problems = append(problems, err)
	}
	if c.BreakerFailures < 0 {
		problems = append(problems, errs.Field("breaker_failures", "must not be negative, got %d", c.BreakerFailures))
	}
	if c.BreakerOpenTimeout < 0 {
		problems = append(problems, errs.Field("breaker_open_timeout", "must not be negative, got %s", c.BreakerOpenTimeout))
	}
	if c.BreakerHalfOpenRequests < 0 {
		problems = append(problems, errs.Field("breaker_half_open_requests", "must not be negative, got %d", c.BreakerHalfOpenRequests))
	}
	return errors.Join(problems...)
}

// withDefaults fills in defaults, so that Status shows what is in force rather than
// zeros.
func (c Config) withDefaults() Config {
	if c.Kind == "" {
		c.Kind = KindLog
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	c.FailAssignees = normalizeNames(c.FailAssignees)
	return c
}

// Service is the notifier the workflow uses: the configured base notifier behind
// fault injection and a circuit breaker, Breaker(FaultInjector(base)). Injected
// failures count against the breaker on purpose: they stand for a down service, and a
// demo should show the circuit opening.
type Service struct {
	cfg     Config
	url     string // redacted
	chain   Notifier
	breaker *Breaker
}

// New builds a Service from cfg. It returns errs.Invalid errors, all of them at once,
// when cfg does not validate. logger receives the base Log notifier's lines and the
// breaker's state changes; nil means slog.Default().
func New(cfg Config, logger *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("notifier config: %w", err)
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.Default()
	}

	s := &Service{cfg: cfg}
	var base Notifier
	switch cfg.Kind {
	case KindWebhook:
		w, err := NewWebhook(cfg.URL, cfg.Timeout)
		if err != nil {
			return nil, fmt.Errorf("notifier config: %w", err)
		}
		s.url = w.URL()
		base = w
	default:
		base = &Log{Logger: logger, Publish: cfg.Publish}
	}

	chain := base
	if len(cfg.FailAssignees) > 0 || cfg.FailureRate > 0 {
		fi, err := NewFaultInjector(base, Faults{
			FailAssignees: cfg.FailAssignees,
			FailureRate:   cfg.FailureRate,
			Source:        cfg.RandSource,
		})
		if err != nil {
			return nil, fmt.Errorf("notifier config: %w", err)
		}
		chain = fi
	}
	s.breaker = NewBreaker(chain, BreakerSettings{
		Name:             "notify-" + cfg.Kind,
		Failures:         cfg.BreakerFailures,
		OpenTimeout:      cfg.BreakerOpenTimeout,
		HalfOpenRequests: cfg.BreakerHalfOpenRequests,
	}, logger)
	s.chain = s.breaker
	return s, nil
}

// Name returns the configured kind: "log" or "webhook".
func (s *Service) Name() string { return s.cfg.Kind }

// Notify validates n and delivers it through the chain within the configured
// timeout. It returns errs.Invalid for a malformed notification (before the breaker
// sees it) and otherwise what Notifier.Notify documents: errs.Unavailable, wrapping
// ErrCircuitOpen or ErrInjected where those apply, for transient failures.
func (s *Service) Notify(ctx context.Context, n Notification) error {
	if err := n.Validate(); err != nil {
		return err
	}
	// The webhook has its own client timeout; this one also bounds the Log
	// notifier's Publish hook, so no kind of attempt can hang a workflow activity.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	return s.chain.Notify(ctx, n)
}

// Status is what GET /notifier serves: the configuration in force and the breaker's
// state.
type Status struct {
	Kind string `json:"kind"`
	// URL is the webhook's target without credentials, query or fragment.
	URL string `json:"url,omitempty"`
	// Timeout is the per-attempt timeout as a Go duration string ("5s").
	Timeout       string       `json:"timeout"`
	FailAssignees []string     `json:"fail_assignees"`
	FailureRate   float64      `json:"failure_rate"`
	Breaker       BreakerState `json:"breaker"`
}

// Status returns a snapshot of the service.
func (s *Service) Status() Status {
	fail := slices.Clone(s.cfg.FailAssignees)
	if fail == nil {
		fail = []string{} // an empty JSON list, not null: clients iterate it
	}
	return Status{
		Kind:          s.cfg.Kind,
		URL:           s.url,
		Timeout:       s.cfg.Timeout.String(),
		FailAssignees: fail,
		FailureRate:   s.cfg.FailureRate,
		Breaker:       s.breaker.State(),
	}
}
