package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/microsoft/durabletask-go/task"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/chat"
	"github.com/taskagent/taskagent/internal/httpapi"
	"github.com/taskagent/taskagent/internal/notify"
	"github.com/taskagent/taskagent/internal/workflow"
)

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// actorTypes is every actor type the system hosts.
func actorTypes(cfg Config) []actor.Type {
	return []actor.Type{
		actors.TaskActor(),
		actors.ChatActor(chat.Rules{}, cfg.ChatHistory),
	}
}

// system is a started runtime as serve needs it: the same pieces on either
// runtime.
type system struct {
	invoker actor.Invoker
	events  httpapi.EventLog
	engine  workflow.Engine
	ready   func(context.Context) error
	stats   func() any
	// protocol serves the runtime's own routes beside the API (Dapr's app
	// protocol); nil on the embedded runtime.
	protocol   http.Handler
	isProtocol func(path string) bool
	// started runs once the HTTP server listens (the Dapr sidecar needs the app
	// up before it can take workflow work).
	started func(ctx context.Context)
	// close stops the runtime: workflow work first, then actors.
	close func(ctx context.Context)
}

// serve runs the system until ctx is done, then shuts down gracefully: it stops
// taking connections, lets requests in flight finish (up to the shutdown timeout),
// and closes the runtime after them.
func serve(ctx context.Context, cfg Config, _ io.Writer, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	if cfg.Runtime == "embedded" {
		env := os.Getenv("GOMAXPROCS")
		n, ok := embeddedProcs(env, runtime.GOMAXPROCS(0))
		if ok && env != "" {
			log.Warn("GOMAXPROCS is not a whole number above 0; Go ignores it", "GOMAXPROCS", env)
		}
		if ok {
			runtime.GOMAXPROCS(n)
			log.Info("GOMAXPROCS is twice the processors Go chose, as the embedded stores wait in fsync; the GOMAXPROCS environment variable overrides it", "gomaxprocs", n)
		}
	}
	sys, notifier, err := startSystem(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		sys.close(stopCtx)
	}()

	if _, ok := sys.engine.(workflow.Backlog); !ok && cfg.MaxWaitingWorkflows > 0 {
		log.Info("max-waiting-workflows does not apply: this runtime's workflow backlog is kept by the sidecar", "runtime", cfg.Runtime)
	}
	api := httpapi.New(httpapi.Config{
		Tasks:        actors.Tasks{Invoker: sys.invoker},
		Chats:        actors.Chats{Invoker: sys.invoker},
		Events:       sys.events,
		Workflows:    workflow.Service{Engine: sys.engine, Notify: cfg.notifyPolicy(), MaxWaiting: cfg.MaxWaitingWorkflows},
		Notifier:     notifier,
		Stats:        sys.stats,
		Ready:        sys.ready,
		Logger:       log.With("component", "http"),
		MaxBodyBytes: cfg.MaxBodyBytes,
	})
	var handler http.Handler = api
	if sys.protocol != nil {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if sys.isProtocol(r.URL.Path) {
				sys.protocol.ServeHTTP(w, r)
				return
			}
			api.ServeHTTP(w, r)
		})
	}

	if cfg.PprofAddr != "" {
		stop, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Event streams never end by themselves: Shutdown would wait for them forever.
	srv.RegisterOnShutdown(api.CloseStreams)
	log.Info("taskagent serving", "addr", ln.Addr().String(), "runtime", cfg.Runtime, "data_dir", cfg.DataDir)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if sys.started != nil {
		go sys.started(ctx)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// startSystem starts the configured runtime with the workflow and its activities
// registered, and returns it with the notifier the activities use.
func startSystem(ctx context.Context, cfg Config, log *slog.Logger) (*system, *notify.Service, error) {
	notifier, err := notify.New(cfg.notifyConfig(), log.With("component", "notify"))
	if err != nil {
		return nil, nil, err
	}
	// The registry is filled once the invoker exists: activities reach actors
	// through it.
	reg := task.NewTaskRegistry()
	register := func(inv actor.Invoker) error {
		wlog := log.With("component", "workflow")
		return workflow.Register(reg, workflow.Activities{Tasks: actors.Tasks{Invoker: inv}, Notifier: notifier, Log: wlog}, wlog)
	}
	var sys *system
	switch cfg.Runtime {
	case "dapr":
		sys, err = startDapr(ctx, cfg, log, reg, register)
	default:
		sys, err = startEmbedded(ctx, cfg, log, reg, register)
	}
	if err != nil {
		return nil, nil, err
	}
	return sys, notifier, nil
}

// servePprof serves Go's profiler on its own listener, apart from the API, so that
// it is reachable only where the operator chose (a loopback address, say).
func servePprof(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for pprof on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("pprof serving", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// embeddedProcs returns the GOMAXPROCS the embedded runtime serves with: twice
// what Go chose (procs), unless the GOMAXPROCS environment variable (env) sets
// it, in which case ok is false. Like Go, it ignores a value that is not a
// whole number above 0.
//
// The embedded stores' committers wait in fsync for most of each commit. Go
// hands the processor of a goroutine blocked in a system call to another
// thread, and a goroutine whose call returns while every processor is busy
// waits in the global run queue, behind the goroutines its own commits woke.
// Under the 10,000-task bench on 2 cores the workflow committer spent 41–53 %
// of its time waiting there (go tool trace), and it is the serial part of every
// workflow step. With twice as many processors as cores it waited 24 % of its
// time, as the kernel, which runs a thread that wakes from I/O promptly, shares
// the cores out instead; completed workflows per second rose by 8–17 % (9
// alternating pairs of runs, 8 won; docs/performance.md).
func embeddedProcs(env string, procs int) (n int, ok bool) {
	if n, err := strconv.Atoi(env); err == nil && n > 0 {
		return 0, false
	}
	return 2 * procs, true
}
