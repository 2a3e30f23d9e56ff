package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/task"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/runtime/dapr"
	"github.com/taskagent/taskagent/internal/runtime/embedded"
)

// startEmbedded starts the in-process runtime: actors and workflows in SQLite
// files in the data directory.
func startEmbedded(ctx context.Context, cfg Config, log *slog.Logger, reg *task.TaskRegistry, register func(actor.Invoker) error) (*system, error) {
	host, err := embedded.Open(ctx, cfg.DataDir, actorTypes(cfg), embedded.Options{
		IdleTimeout:    cfg.ActorIdleTime,
		EventRetention: cfg.EventRetention,
		Logger:         log.With("component", "actors"),
	})
	if err != nil {
		return nil, fmt.Errorf("start embedded runtime: %w", err)
	}
	if err := register(host); err != nil {
		host.Close()
		return nil, err
	}
	// The workers stop when close says so, not when the signal arrives: close
	// cancels steps still running, which resume at the next start.
	engine, err := embedded.StartWorkflows(context.WithoutCancel(ctx), cfg.DataDir, reg, cfg.WorkflowParallelism, log.With("component", "workflow-engine"))
	if err != nil {
		host.Close()
		return nil, fmt.Errorf("start workflow engine: %w", err)
	}
	return &system{
		invoker: host,
		events:  host.Events(),
		engine:  engine,
		ready:   host.Ready,
		stats: func() any {
			return map[string]any{"name": "embedded", "actors": host.Stats(), "workflows": engine.Backend().Stats()}
		},
		close: func(ctx context.Context) {
			// Stop workflow work before the actors it calls go away.
			if err := engine.Close(ctx); err != nil {
				log.Warn("stop workflow engine", "err", err)
			}
			host.Close()
		},
	}, nil
}

// startDapr starts the runtime that lives beside a daprd sidecar. The app must
// answer the sidecar's configuration call before the sidecar is ready, so the
// workflow connection is made once the HTTP server listens (started); until then
// workflow calls answer 503.
func startDapr(ctx context.Context, cfg Config, log *slog.Logger, reg *task.TaskRegistry, register func(actor.Invoker) error) (*system, error) {
	rt, err := dapr.New(dapr.Config{
		HTTPPort:           cfg.DaprHTTPPort,
		GRPCPort:           cfg.DaprGRPCPort,
		APIToken:           cfg.DaprAPIToken,
		AppToken:           cfg.AppAPIToken,
		IdleTimeout:        cfg.ActorIdleTime,
		ReminderPartitions: cfg.DaprReminderPartitions,
		ReminderRetry:      cfg.DaprReminderRetry,
		Logger:             log.With("component", "dapr"),
	}, actorTypes(cfg))
	if err != nil {
		return nil, err
	}
	if err := register(rt); err != nil {
		return nil, err
	}
	engine := &laterEngine{}
	return &system{
		invoker:    rt,
		events:     rt.Events(),
		engine:     engine,
		protocol:   rt.Handler(),
		isProtocol: dapr.Routes,
		ready: func(ctx context.Context) error {
			if err := rt.Ready(ctx); err != nil {
				return err
			}
			if engine.e.Load() == nil {
				return errs.E(errs.Unavailable, "workflow engine not connected yet")
			}
			return nil
		},
		stats: rt.Stats,
		started: func(ctx context.Context) {
			for wait := 100 * time.Millisecond; ctx.Err() == nil; wait = min(2*wait, 5*time.Second) {
				if rt.Ready(ctx) == nil {
					e, err := rt.StartWorkflows(ctx, reg)
					if err == nil {
						engine.e.Store(e)
						log.Info("connected to the dapr workflow engine")
						return
					}
					log.Warn("connect to the dapr workflow engine; retrying", "err", err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
		},
		close: func(ctx context.Context) {
			if e := engine.e.Load(); e != nil {
				e.Close(ctx)
			}
			rt.Close()
		},
	}, nil
}

// laterEngine is a workflow engine that becomes available once connected.
type laterEngine struct {
	e atomic.Pointer[dapr.WorkflowEngine]
}

var errNotConnected = errs.E(errs.Unavailable, "the workflow engine is not connected yet")

func (l *laterEngine) get() (*dapr.WorkflowEngine, error) {
	if e := l.e.Load(); e != nil {
		return e, nil
	}
	return nil, errNotConnected
}

func (l *laterEngine) Schedule(ctx context.Context, name, id string, input any) error {
	e, err := l.get()
	if err != nil {
		return err
	}
	return e.Schedule(ctx, name, id, input)
}

func (l *laterEngine) Metadata(ctx context.Context, id string) (*api.OrchestrationMetadata, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.Metadata(ctx, id)
}

func (l *laterEngine) History(ctx context.Context, id string) ([]*backend.HistoryEvent, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.History(ctx, id)
}

func (l *laterEngine) Terminate(ctx context.Context, id, reason string) error {
	e, err := l.get()
	if err != nil {
		return err
	}
	return e.Terminate(ctx, id, reason)
}

func (l *laterEngine) Purge(ctx context.Context, id string) error {
	e, err := l.get()
	if err != nil {
		return err
	}
	return e.Purge(ctx, id)
}
