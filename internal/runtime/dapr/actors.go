package dapr

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/errs"
)

// The app side of Dapr's actor protocol. daprd places each actor on one replica,
// gives it one call at a time, and calls the app over HTTP:
//
//	GET    /dapr/config                                  actor types and runtime settings
//	PUT    /actors/{type}/{id}/method/{method}           a method call
//	PUT    /actors/{type}/{id}/method/remind/{reminder}  a reminder came due
//	DELETE /actors/{type}/{id}                           deactivation
//
// The app answers every method call with 200 and an envelope (value or error), so
// that error kinds survive the trip through daprd, which would otherwise turn any
// failure into a generic 500.

// envelope is the body of every actor method answer.
type envelope struct {
	Value json.RawMessage `json:"value,omitempty"`
	Error *errs.Error     `json:"error,omitempty"`
}

// reminderEnvelope wraps a reminder's data: Once marks a reminder that must fire
// once. Dapr 1.14 drops a one-shot reminder whose callback fails, wherever it
// keeps reminders (the Scheduler service also drops one that fires while no
// sidecar hosting its actor type is connected), so one-shot reminders are
// registered with a period (the retry interval) and deleted by the callback
// that succeeds.
type reminderEnvelope struct {
	Once bool            `json:"once,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// reminderCall is what daprd sends when a reminder comes due.
type reminderCall struct {
	Data    json.RawMessage `json:"data"`
	DueTime string          `json:"dueTime"`
	Period  string          `json:"period"`
}

type actorKey struct{ typ, id string }

// activation is an actor in this replica's memory.
type activation struct {
	turn  chan struct{}
	refs  int               // guarded by host.mu
	cache map[string][]byte // state read so far; nil value: absent
	// outbox holds events committed with state but not yet published.
	outbox       []outboxEvent
	outboxLoaded bool
}

// host serves the actor protocol for the domain actor types.
type host struct {
	types map[string]actor.Type
	sc    *sidecar
	log   *slog.Logger
	cfg   Config
	now   func() time.Time

	mu     sync.Mutex
	active map[actorKey]*activation

	// dueTimes is dueUnknown until exactDueTimes has read daprd's features.
	dueTimes atomic.Int32

	// deactivated is told about every deactivation; tests wait on it.
	deactivated func(actorType, actorID string)
}

func newHost(cfg Config, sc *sidecar, types []actor.Type) *host {
	h := &host{
		types:  make(map[string]actor.Type, len(types)),
		sc:     sc,
		log:    cfg.Logger,
		cfg:    cfg,
		now:    time.Now,
		active: make(map[actorKey]*activation),
	}
	for _, t := range types {
		h.types[t.Name] = t
	}
	return h
}

// appConfig is the body of GET /dapr/config.
type appConfig struct {
	Entities                   []string `json:"entities"`
	ActorIdleTimeout           string   `json:"actorIdleTimeout"`
	DrainOngoingCallTimeout    string   `json:"drainOngoingCallTimeout"`
	DrainRebalancedActors      bool     `json:"drainRebalancedActors"`
	RemindersStoragePartitions int      `json:"remindersStoragePartitions"`
}

func (h *host) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /dapr/config", h.config)
	mux.HandleFunc("PUT /actors/{type}/{id}/method/remind/{name}", h.remind)
	mux.HandleFunc("PUT /actors/{type}/{id}/method/timer/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK) // taskagent registers no timers
	})
	mux.HandleFunc("PUT /actors/{type}/{id}/method/{method}", h.method)
	mux.HandleFunc("DELETE /actors/{type}/{id}", h.deactivate)
}

func (h *host) config(w http.ResponseWriter, r *http.Request) {
	c := appConfig{
		ActorIdleTimeout:           h.cfg.IdleTimeout.String(),
		DrainOngoingCallTimeout:    "30s",
		DrainRebalancedActors:      true,
		RemindersStoragePartitions: h.cfg.ReminderPartitions,
	}
	for name := range h.types {
		c.Entities = append(c.Entities, name)
	}
	writeJSON(w, http.StatusOK, c)
}

// maxActorBody bounds what daprd may send the app for one call.
const maxActorBody = 4 << 20

func (h *host) method(w http.ResponseWriter, r *http.Request) {
	typ, id, method := r.PathValue("type"), r.PathValue("id"), r.PathValue("method")
	input, err := io.ReadAll(io.LimitReader(r.Body, maxActorBody))
	if err != nil {
		writeJSON(w, http.StatusOK, envelope{Error: errs.Public(errs.E(errs.Unavailable, "read call: %v", err))})
		return
	}
	t, ok := h.types[typ]
	var m actor.Method
	if ok {
		m, ok = t.Methods[method]
	}
	if !ok {
		writeJSON(w, http.StatusOK, envelope{Error: &errs.Error{Kind: errs.NotFound, Message: fmt.Sprintf("actor type %s has no method %q", typ, method)}})
		return
	}
	if string(input) == "null" {
		input = nil
	}
	var out []byte
	err = h.inTurn(r.Context(), actorKey{typ, id}, func(tn *turn) error {
		var err error
		out, err = m(r.Context(), tn, input)
		return err
	})
	if err != nil {
		if errs.KindOf(err) == errs.Internal {
			h.log.Error("actor method failed", "actor_type", typ, "actor_id", id, "method", method, "err", err)
		}
		writeJSON(w, http.StatusOK, envelope{Error: errs.Public(err)})
		return
	}
	writeJSON(w, http.StatusOK, envelope{Value: out})
}

func (h *host) remind(w http.ResponseWriter, r *http.Request) {
	typ, id, name := r.PathValue("type"), r.PathValue("id"), r.PathValue("name")
	var call reminderCall
	if err := json.NewDecoder(io.LimitReader(r.Body, maxActorBody)).Decode(&call); err != nil {
		h.log.Error("unreadable reminder call", "actor_type", typ, "actor_id", id, "reminder", name, "err", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var env reminderEnvelope
	if len(call.Data) > 0 {
		if err := json.Unmarshal(call.Data, &env); err != nil {
			h.log.Error("unreadable reminder data", "actor_type", typ, "actor_id", id, "reminder", name, "err", err)
		}
	}
	t, ok := h.types[typ]
	done := false
	err := h.inTurn(r.Context(), actorKey{typ, id}, func(tn *turn) error {
		if !ok || t.Remind == nil {
			return errs.E(errs.NotFound, "actor type %q takes no reminders", typ)
		}
		if err := t.Remind(r.Context(), tn, name, env.Data); err != nil {
			return err
		}
		// A one-shot reminder is done, unless the callback registered it again.
		done = env.Once && !tn.setsReminder(name)
		return nil
	})
	if err != nil {
		// A one-shot reminder fires again after its retry period; a periodic one at
		// its next period.
		h.log.Warn("reminder callback failed; it will fire again", "actor_type", typ, "actor_id", id, "reminder", name, "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if done {
		// Tells daprd to stop the reminder: it is deleted after this callback,
		// which has saved what it produced.
		w.Header().Set("X-DaprReminderCancel", "true")
	}
	w.WriteHeader(http.StatusOK)
}

func (h *host) deactivate(w http.ResponseWriter, r *http.Request) {
	k := actorKey{r.PathValue("type"), r.PathValue("id")}
	h.mu.Lock()
	a := h.active[k]
	if a != nil && a.refs == 0 {
		delete(h.active, k)
	}
	h.mu.Unlock()
	if h.deactivated != nil {
		h.deactivated(k.typ, k.id)
	}
	w.WriteHeader(http.StatusOK)
}

// inTurn runs f as a turn of actor k: daprd already gives the actor one call at a
// time; the local turn lock keeps that true for anything that reaches the app
// another way.
func (h *host) inTurn(ctx context.Context, k actorKey, f func(*turn) error) (err error) {
	a := h.acquire(k)
	defer h.release(k, a)
	select {
	case a.turn <- struct{}{}:
	case <-ctx.Done():
		return errs.E(errs.Unavailable, "waiting for actor %s/%s: %v", k.typ, k.id, ctx.Err())
	}
	defer func() { <-a.turn }()
	if a.cache == nil {
		a.cache = make(map[string][]byte)
	}
	if !a.outboxLoaded {
		// Events a previous activation committed but may not have published go out
		// first: at least once.
		if err := h.loadOutbox(ctx, k, a); err != nil {
			return err
		}
	}
	tn := &turn{host: h, key: k, act: a, now: h.now()}
	tn.Cache = a.cache
	tn.Load = func(ctx context.Context, key string) ([]byte, error) { return h.sc.getState(ctx, k.typ, k.id, key) }
	if err := actor.Guard(h.log, k.typ, k.id, func() error { return f(tn) }); err != nil {
		return err
	}
	return h.commit(ctx, tn)
}

func (h *host) acquire(k actorKey) *activation {
	h.mu.Lock()
	defer h.mu.Unlock()
	a, ok := h.active[k]
	if !ok {
		a = &activation{turn: make(chan struct{}, 1)}
		h.active[k] = a
	}
	a.refs++
	return a
}

func (h *host) release(k actorKey, a *activation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a.refs--
}

// activeCount is how many actors this replica holds in memory.
func (h *host) activeCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.active)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// requireToken wraps the app-side routes: when APP_API_TOKEN is set, only daprd,
// which sends it as dapr-api-token, may call them.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("dapr-api-token")), []byte(token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, envelope{Error: &errs.Error{Kind: errs.Unauthorized, Message: "missing or wrong dapr-api-token"}})
			return
		}
		next.ServeHTTP(w, r)
	})
}

var errNoSidecar = errors.New("dapr sidecar ports are not configured: set DAPR_HTTP_PORT and DAPR_GRPC_PORT")
