package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/microsoft/durabletask-go/task"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/chat"
	"github.com/taskagent/taskagent/internal/httpapi"
	"github.com/taskagent/taskagent/internal/notify"
	"github.com/taskagent/taskagent/internal/runtime/embedded"
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

// serve runs the system until ctx is done, then shuts down gracefully: it stops
// taking connections, lets requests in flight finish (up to the shutdown timeout),
// and closes the runtime after them.
func serve(ctx context.Context, cfg Config, _ io.Writer, stderr io.Writer) error {
	log := newLogger(cfg, stderr)

	host, err := embedded.Open(ctx, cfg.DataDir, actorTypes(cfg), embedded.Options{
		IdleTimeout: cfg.ActorIdleTime,
		Logger:      log.With("component", "actors"),
	})
	if err != nil {
		return fmt.Errorf("start embedded runtime: %w", err)
	}
	defer host.Close()
	tasks := actors.Tasks{Invoker: host}

	notifier, err := notify.New(cfg.notifyConfig(), log.With("component", "notify"))
	if err != nil {
		return err
	}
	reg := task.NewTaskRegistry()
	wlog := log.With("component", "workflow")
	if err := workflow.Register(reg, workflow.Activities{Tasks: tasks, Notifier: notifier, Log: wlog}, wlog); err != nil {
		return err
	}
	engine, err := embedded.StartWorkflows(ctx, cfg.DataDir, reg, cfg.WorkflowParallelism, log.With("component", "workflow-engine"))
	if err != nil {
		return fmt.Errorf("start workflow engine: %w", err)
	}
	defer func() {
		// Workflow steps in flight finish before the actors they call go away.
		stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := engine.Close(stopCtx); err != nil {
			log.Warn("stop workflow engine", "err", err)
		}
	}()

	api := httpapi.New(httpapi.Config{
		Tasks:     tasks,
		Chats:     actors.Chats{Invoker: host},
		Events:    host.Events(),
		Workflows: workflow.Service{Engine: engine, Notify: cfg.notifyPolicy()},
		Notifier:  notifier,
		Stats: func() any {
			return map[string]any{"name": "embedded", "actors": host.Stats(), "workflows": engine.Backend().Stats()}
		},
		Ready:        host.Ready,
		Logger:       log.With("component", "http"),
		MaxBodyBytes: cfg.MaxBodyBytes,
	})

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Event streams never end by themselves: Shutdown would wait for them forever.
	srv.RegisterOnShutdown(api.CloseStreams)
	log.Info("taskagent serving", "addr", ln.Addr().String(), "runtime", cfg.Runtime, "data_dir", cfg.DataDir)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
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
