package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/task"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/runtime/dtlog"
	"github.com/taskagent/taskagent/internal/runtime/dtworker"
	"github.com/taskagent/taskagent/internal/runtime/embedded/wfbackend"
)

// WorkflowDBFile is the name of the workflow database in the data directory. It is
// a file of its own so that workflow and actor commits do not queue behind each
// other.
const WorkflowDBFile = "workflows.db"

// WorkflowEngine runs durable workflows in this process: durabletask-go's
// orchestration and activity workers over the event-driven SQLite backend of
// package wfbackend. It implements workflow.Engine.
type WorkflowEngine struct {
	be     *wfbackend.Backend
	worker *dtworker.Worker
	client backend.TaskHubClient
}

// StartWorkflows opens the workflow store in dir and starts workers for the
// orchestrators and activities in reg, each running up to parallelism work items
// at once. Work a previous process left unfinished resumes at once.
func StartWorkflows(ctx context.Context, dir string, reg *task.TaskRegistry, parallelism int, log *slog.Logger) (*WorkflowEngine, error) {
	be, err := wfbackend.Open(filepath.Join(dir, WorkflowDBFile), log)
	if err != nil {
		return nil, err
	}
	w, err := dtworker.Start(ctx, be, task.NewTaskExecutor(reg), dtlog.New(log), int32(max(parallelism, 1)))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("start workflow workers: %w", err), be.Close())
	}
	return &WorkflowEngine{be: be, worker: w, client: backend.NewTaskHubClient(be)}, nil
}

// Close stops the workers, letting work in flight finish, then closes the store.
// Work not finished by then resumes at the next start.
func (e *WorkflowEngine) Close(ctx context.Context) error {
	return errors.Join(e.worker.Shutdown(ctx), e.be.Close())
}

// Waiting returns how many workflows have been scheduled and wait for their
// first step.
func (e *WorkflowEngine) Waiting() int { return e.be.Waiting() }

// Backend returns the engine's backend, for stats and benchmarks.
func (e *WorkflowEngine) Backend() *wfbackend.Backend { return e.be }

// Schedule starts orchestrator name as instance id.
func (e *WorkflowEngine) Schedule(ctx context.Context, name, id string, input any) error {
	_, err := e.client.ScheduleNewOrchestration(ctx, name, api.WithInstanceID(api.InstanceID(id)), api.WithInput(input))
	switch {
	case errors.Is(err, api.ErrDuplicateInstance):
		return errs.E(errs.Conflict, "workflow %s exists", id)
	case err != nil:
		return errs.E(errs.Unavailable, "start workflow %s: %v", id, err)
	}
	return nil
}

// Metadata describes instance id.
func (e *WorkflowEngine) Metadata(ctx context.Context, id string) (*api.OrchestrationMetadata, error) {
	md, err := e.be.GetOrchestrationMetadata(ctx, api.InstanceID(id))
	if errors.Is(err, api.ErrInstanceNotFound) {
		return nil, errs.E(errs.NotFound, "no workflow %s", id)
	}
	if err != nil {
		return nil, errs.E(errs.Unavailable, "read workflow %s: %v", id, err)
	}
	return md, nil
}

// History returns instance id's history events.
func (e *WorkflowEngine) History(ctx context.Context, id string) ([]*backend.HistoryEvent, error) {
	h, err := e.be.History(ctx, api.InstanceID(id))
	if errors.Is(err, api.ErrInstanceNotFound) {
		return nil, errs.E(errs.NotFound, "no workflow %s", id)
	}
	return h, err
}

// Terminate ends running instance id.
func (e *WorkflowEngine) Terminate(ctx context.Context, id, reason string) error {
	if err := e.client.TerminateOrchestration(ctx, api.InstanceID(id), api.WithOutput(reason)); err != nil {
		if errors.Is(err, api.ErrInstanceNotFound) {
			return errs.E(errs.NotFound, "no workflow %s", id)
		}
		return errs.E(errs.Unavailable, "terminate workflow %s: %v", id, err)
	}
	return nil
}

// Purge deletes finished instance id.
func (e *WorkflowEngine) Purge(ctx context.Context, id string) error {
	if err := e.client.PurgeOrchestrationState(ctx, api.InstanceID(id)); err != nil {
		if errors.Is(err, api.ErrInstanceNotFound) {
			return errs.E(errs.NotFound, "no workflow %s", id)
		}
		if errors.Is(err, api.ErrNotCompleted) {
			return errs.E(errs.Conflict, "workflow %s is still running", id)
		}
		return errs.E(errs.Unavailable, "purge workflow %s: %v", id, err)
	}
	return nil
}
