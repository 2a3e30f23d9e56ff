package dapr

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/client"
	"github.com/microsoft/durabletask-go/task"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/runtime/dtlog"
)

// WorkflowEngine runs workflows on daprd's workflow engine (the same durabletask
// engine the embedded runtime uses, with its state in Dapr actors): this process
// receives the orchestrator and activity work items of its sidecar over gRPC. It
// implements workflow.Engine.
type WorkflowEngine struct {
	conn   *grpc.ClientConn
	client *client.TaskHubGrpcClient
	cancel context.CancelFunc
}

// StartWorkflows connects to the sidecar's gRPC port and starts taking work items
// for the orchestrators and activities in reg.
func (r *Runtime) StartWorkflows(ctx context.Context, reg *task.TaskRegistry) (*WorkflowEngine, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if tok := r.cfg.APIToken; tok != "" {
		opts = append(opts,
			grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, o ...grpc.CallOption) error {
				return invoker(metadata.AppendToOutgoingContext(ctx, "dapr-api-token", tok), method, req, reply, cc, o...)
			}),
			grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, o ...grpc.CallOption) (grpc.ClientStream, error) {
				return streamer(metadata.AppendToOutgoingContext(ctx, "dapr-api-token", tok), desc, cc, method, o...)
			}))
	}
	conn, err := grpc.Dial(fmt.Sprintf("127.0.0.1:%d", r.cfg.GRPCPort), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to the dapr sidecar: %w", err)
	}
	c := client.NewTaskHubGrpcClient(conn, dtlog.New(r.cfg.Logger.With("component", "dapr-workflow")))
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := c.StartWorkItemListener(lctx, reg); err != nil {
		cancel()
		conn.Close()
		return nil, fmt.Errorf("start workflow work item listener: %w", err)
	}
	return &WorkflowEngine{conn: conn, client: c, cancel: cancel}, nil
}

// Close stops taking work items and closes the connection.
func (e *WorkflowEngine) Close(context.Context) error {
	e.cancel()
	return e.conn.Close()
}

// Schedule starts orchestrator name as instance id.
func (e *WorkflowEngine) Schedule(ctx context.Context, name, id string, input any) error {
	_, err := e.client.ScheduleNewOrchestration(ctx, name, api.WithInstanceID(api.InstanceID(id)), api.WithInput(input))
	if err != nil {
		if strings.Contains(err.Error(), "already exists") {
			return errs.E(errs.Conflict, "workflow %s exists", id)
		}
		return errs.E(errs.Unavailable, "start workflow %s: %v", id, err)
	}
	return nil
}

// Metadata describes instance id.
func (e *WorkflowEngine) Metadata(ctx context.Context, id string) (*api.OrchestrationMetadata, error) {
	md, err := e.client.FetchOrchestrationMetadata(ctx, api.InstanceID(id), api.WithFetchPayloads(true))
	if err != nil {
		return nil, mapErr(err, id, "read")
	}
	return md, nil
}

// History is not exposed by daprd's workflow API: a running workflow's timeline
// shows once it has finished.
func (e *WorkflowEngine) History(context.Context, string) ([]*backend.HistoryEvent, error) {
	return nil, nil
}

// Terminate ends running instance id.
func (e *WorkflowEngine) Terminate(ctx context.Context, id, reason string) error {
	return mapErr(e.client.TerminateOrchestration(ctx, api.InstanceID(id), api.WithOutput(reason)), id, "terminate")
}

// Purge deletes finished instance id.
func (e *WorkflowEngine) Purge(ctx context.Context, id string) error {
	return mapErr(e.client.PurgeOrchestrationState(ctx, api.InstanceID(id)), id, "purge")
}

// mapErr gives daprd's workflow errors their kinds. daprd reports a missing
// instance in words, not a code, so the words are what there is to go on.
func mapErr(err error, id, op string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if errors.Is(err, api.ErrInstanceNotFound) || strings.Contains(msg, "not found") || strings.Contains(msg, "no such instance") {
		return errs.E(errs.NotFound, "no workflow %s", id)
	}
	return errs.E(errs.Unavailable, "%s workflow %s: %v", op, id, err)
}
