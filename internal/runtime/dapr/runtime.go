package dapr

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/errs"
)

// Config configures the Dapr runtime.
type Config struct {
	// HTTPPort and GRPCPort are the sidecar's (DAPR_HTTP_PORT, DAPR_GRPC_PORT).
	HTTPPort, GRPCPort int
	// APIToken authenticates the app to the sidecar (DAPR_API_TOKEN).
	APIToken string
	// AppToken is what the sidecar must present to the app (APP_API_TOKEN).
	AppToken string
	// IdleTimeout is how long daprd keeps an idle actor active.
	IdleTimeout time.Duration
	// ReminderPartitions spreads each actor type's reminders over this many state
	// records, so that 10,000 task reminders do not live in one. It matters only
	// when daprd keeps reminders in the state store: with the SchedulerReminders
	// feature, which deploy/ turns on, every reminder is a job of its own.
	ReminderPartitions int
	// ReminderRetry is how soon a one-shot reminder whose callback failed fires
	// again.
	ReminderRetry time.Duration
	// EventLogSize bounds the events kept for GET /events.
	EventLogSize int
	Logger       *slog.Logger
}

func (c *Config) setDefaults() {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Minute
	}
	if c.ReminderPartitions <= 0 {
		c.ReminderPartitions = 64
	}
	if c.ReminderRetry <= 0 {
		c.ReminderRetry = 5 * time.Second
	}
	if c.EventLogSize <= 0 {
		c.EventLogSize = 100_000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Runtime hosts actors behind a Dapr sidecar and calls actors through it. It
// implements actor.Invoker.
type Runtime struct {
	cfg    Config
	sc     *sidecar
	host   *host
	events *EventLog
	mux    *http.ServeMux
}

// New returns a Dapr runtime hosting types. Serve its Handler on the app port
// before the sidecar starts asking for the app's configuration.
func New(cfg Config, types []actor.Type) (*Runtime, error) {
	cfg.setDefaults()
	if cfg.HTTPPort == 0 || cfg.GRPCPort == 0 {
		return nil, errNoSidecar
	}
	sc := newSidecar(cfg.HTTPPort, cfg.APIToken)
	r := &Runtime{cfg: cfg, sc: sc, host: newHost(cfg, sc, types), events: newEventLog(cfg.EventLogSize), mux: http.NewServeMux()}
	r.host.routes(r.mux)
	r.events.routes(r.mux)
	return r, nil
}

// Handler serves the app side of Dapr's protocols: /dapr/config,
// /dapr/subscribe, /dapr/events/{topic} and /actors/... Every other path is for
// the API. With an app token set, callers must present it.
func (r *Runtime) Handler() http.Handler { return requireToken(r.cfg.AppToken, r.mux) }

// Routes reports whether path belongs to Handler.
func Routes(path string) bool {
	return len(path) >= 6 && (path[:6] == "/dapr/" || (len(path) >= 8 && path[:8] == "/actors/"))
}

// Events returns the log of events this replica received.
func (r *Runtime) Events() *EventLog { return r.events }

// Ready reports whether the sidecar is up with its components loaded.
func (r *Runtime) Ready(ctx context.Context) error { return r.sc.healthy(ctx) }

// Stats reports the replica's actor figures.
func (r *Runtime) Stats() any {
	return map[string]any{"name": "dapr", "active_actors": r.host.activeCount()}
}

// OnDeactivate sets a function told about every actor deactivation (tests).
func (r *Runtime) OnDeactivate(f func(actorType, actorID string)) { r.host.deactivated = f }

// Close stops serving events.
func (r *Runtime) Close() { r.events.close() }

// Invoke calls an actor method through the sidecar, which routes it to the
// replica hosting the actor. The method's own errors come back with their kinds.
func (r *Runtime) Invoke(ctx context.Context, actorType, actorID, method string, input []byte) ([]byte, error) {
	b, err := r.sc.invoke(ctx, actorType, actorID, method, input)
	if err != nil {
		return nil, err
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, errs.E(errs.Unavailable, "actor %s/%s.%s answered %q", actorType, actorID, method, truncate(b, 200))
	}
	if env.Error != nil {
		return nil, env.Error
	}
	return env.Value, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
