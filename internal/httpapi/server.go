package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"
)

// Defaults for the Config fields left zero.
const (
	// DefaultMaxBodyBytes bounds request bodies. The largest legitimate body, a task
	// with a full title and description, is under 5 KiB of text, even if every
	// character were escaped.
	DefaultMaxBodyBytes = 64 << 10
	// DefaultHeartbeatInterval is how long an event stream may stay silent:
	// proxies and load balancers commonly drop connections idle for 30-60 s.
	DefaultHeartbeatInterval = 15 * time.Second
)

// Config is what New needs. Tasks, Chats and Events are required; every other
// field has a default.
type Config struct {
	// Tasks serves the /tasks routes.
	Tasks TaskService
	// Chats serves the /chat routes.
	Chats ChatService
	// Events serves GET /events.
	Events EventLog
	// Workflows serves POST /tasks/process and the /workflows routes; nil leaves
	// them out.
	Workflows WorkflowService
	// Notifier serves GET /notifier; nil leaves it out.
	Notifier NotifierStatus
	// Stats adds the runtime's own figures to GET /stats; nil reports the
	// process's only.
	Stats func() any
	// Ready reports whether the runtime can serve requests (storage open, sidecar
	// reachable); GET /readyz answers 503 while it returns an error. Nil means
	// always ready.
	Ready func(ctx context.Context) error
	// Logger gets one line per request and the details of internal errors, which
	// are never sent to clients. Nil discards logs.
	Logger *slog.Logger
	// Now is the clock that deadline_seconds counts from; nil means time.Now. It
	// should be the clock the actors use, so that a deadline and the reminder that
	// enforces it agree.
	Now func() time.Time
	// MaxBodyBytes bounds request bodies; a larger one gets 413. Zero or less means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// HeartbeatInterval is the longest an event stream stays silent before it sends
	// a comment line. Zero or less means DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
}

// Server is taskagent's HTTP API, an http.Handler. Create it with New.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler

	// closing is closed by CloseStreams; event streams end when it is.
	closing   chan struct{}
	closeOnce sync.Once
}

// New returns the API serving cfg's services. It panics when a required service is
// missing: that is a wiring bug, found at start-up rather than on the first request.
func New(cfg Config) *Server {
	switch {
	case cfg.Tasks == nil:
		panic("httpapi: Config.Tasks is nil")
	case cfg.Chats == nil:
		panic("httpapi: Config.Chats is nil")
	case cfg.Events == nil:
		panic("httpapi: Config.Events is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		mux:     http.NewServeMux(),
		closing: make(chan struct{}),
	}
	s.routes()
	s.handler = s.observe(http.HandlerFunc(s.dispatch))
	return s
}

// routes registers every route. It is the one list of what the API serves: routes
// added later (workflows, notifiers) go here too, with their handlers in files of
// their own.
func (s *Server) routes() {
	s.handle("GET /healthz", s.healthz)
	s.handle("GET /readyz", s.readyz)
	s.handle("GET /stats", s.stats)

	s.handle("POST /tasks", s.createTask)
	s.handle("GET /tasks/{id}", s.getTask)
	s.handle("POST /tasks/{id}/assign", s.assignTask)
	s.handle("POST /tasks/{id}/unassign", s.unassignTask)
	s.handle("POST /tasks/{id}/status", s.updateStatus)
	s.handle("POST /tasks/{id}/deadline", s.setDeadline)

	s.handle("POST /chat/{user}/messages", s.sendMessage)
	s.handle("GET /chat/{user}/history", s.chatHistory)
	s.handle("DELETE /chat/{user}/history", s.clearHistory)

	s.handle("GET /events", s.events)

	if s.cfg.Workflows != nil {
		s.handle("POST /tasks/process", s.processTask)
		s.handle("GET /workflows/{id}", s.getWorkflow)
		s.handle("POST /workflows/{id}/terminate", s.terminateWorkflow)
		s.handle("DELETE /workflows/{id}", s.purgeWorkflow)
	}
	if s.cfg.Notifier != nil {
		s.handle("GET /notifier", s.notifier)
	}
}

// handlerFunc is a handler that returns its error instead of writing it, so that
// every error reaches the client through writeError and its one status mapping.
// A handler returns an error only before it has written anything.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Bound the body here, with the writer the http.Server gave us: every route,
	// including those added later, gets the limit, and MaxBytesReader can tell that
	// writer to close the connection instead of draining an oversize body.
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	s.handler.ServeHTTP(w, r)
}

// CloseStreams ends every open event stream and makes new ones fail with 503.
// http.Server.Shutdown waits for handlers to return and a stream never returns on
// its own, so register this with http.Server.RegisterOnShutdown. Other requests are
// not affected. It is safe to call more than once.
func (s *Server) CloseStreams() {
	s.closeOnce.Do(func() { close(s.closing) })
}

// dispatch routes r through the mux, but answers an unknown route or method with a
// JSON error like every other failure; the mux itself would answer in plain text.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	// No pattern: the mux will answer 404, or 405 with an Allow header. Let it do
	// so into a scratch writer to learn which, and which methods are allowed.
	miss := &routeMiss{header: http.Header{}}
	s.mux.ServeHTTP(miss, r)
	if miss.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", miss.header.Get("Allow"))
		s.writeError(w, r, errMethodNotAllowed(r.Method, r.URL.Path))
		return
	}
	s.writeError(w, r, errNoRoute(r.Method, r.URL.Path))
}

// routeMiss records the status the mux answers a request with that it has no
// route for, and discards the rest.
type routeMiss struct {
	header http.Header
	status int
}

func (m *routeMiss) Header() http.Header { return m.header }

func (m *routeMiss) Write(b []byte) (int, error) {
	m.WriteHeader(http.StatusOK)
	return len(b), nil
}

func (m *routeMiss) WriteHeader(status int) {
	if m.status == 0 {
		m.status = status
	}
}

// observe logs every request once it is done and turns a panic into a 500, so one
// bad request neither kills the process nor leaves the client without an answer.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					// The handler asked net/http to drop the connection.
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic serving request",
					"method", r.Method, "path", r.URL.Path,
					"panic", v, "stack", string(debug.Stack()))
				if rec.status == 0 {
					s.writeErrorBody(rec, http.StatusInternalServerError, internalError())
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK // nothing written: net/http sends 200
			}
			level := slog.LevelInfo
			if (r.URL.Path == "/healthz" || r.URL.Path == "/readyz") && status == http.StatusOK {
				level = slog.LevelDebug // probes come every few seconds; log only failures
			}
			s.log.LogAttrs(r.Context(), level, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("route", r.Pattern),
				slog.Int("status", status),
				slog.Duration("duration", time.Since(start)))
		}()
		next.ServeHTTP(rec, r)
	})
}

// statusRecorder remembers the status of a response for the request log, and
// whether anything was written, so a panic is answered only when it is not too late.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	// 1xx responses are informational; the final status comes later.
	if r.status == 0 && status >= 200 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection to flush event streams
// and clear write deadlines.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// FlushError lets event streams flush through the recorder; http.ResponseController
// prefers it to Flush because it reports a client that went away.
func (r *statusRecorder) FlushError() error {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return http.NewResponseController(r.ResponseWriter).Flush()
}

// Flush serves code that checks for http.Flusher instead of using
// http.ResponseController.
func (r *statusRecorder) Flush() { _ = r.FlushError() }
