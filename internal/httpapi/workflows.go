package httpapi

import (
	"context"
	"net/http"
	"regexp"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/notify"
	"github.com/taskagent/taskagent/internal/task"
	"github.com/taskagent/taskagent/internal/workflow"
)

// WorkflowService is what the API needs to run TaskProcessingWorkflows;
// workflow.Service provides it.
type WorkflowService interface {
	// Start starts the workflow for in.TaskID, or returns the one already running
	// for it; errs.Conflict when it finished before, errs.Invalid for a bad task id.
	Start(ctx context.Context, in workflow.Input) (workflow.Started, error)
	// Get returns workflow id, or errs.NotFound.
	Get(ctx context.Context, id string) (workflow.Status, error)
	// Terminate ends running workflow id: errs.NotFound, errs.Conflict when it is
	// not running.
	Terminate(ctx context.Context, id, reason string) error
	// Purge deletes finished workflow id: errs.NotFound, errs.Conflict while it runs.
	Purge(ctx context.Context, id string) error
}

// NotifierStatus reports the notifier and its circuit breaker; *notify.Service
// provides it.
type NotifierStatus interface {
	Status() notify.Status
}

// processRequest is the body of POST /tasks/process: the seed's request.
type processRequest struct {
	TaskID          string `json:"task_id"`
	Title           string `json:"title"`
	Description     string `json:"description"`
	Assignee        string `json:"assignee"`
	DeadlineSeconds int64  `json:"deadline_seconds"`
}

// processTask starts the workflow and answers 202: the work goes on after the
// response. Only what the workflow's id and storage depend on is checked here (a
// valid task id, fields within their size limits); the rules of a good task (title
// and description long enough, an assignee) are the workflow's validation step, and
// a task that breaks them ends "rejected" with every problem listed.
func (s *Server) processTask(w http.ResponseWriter, r *http.Request) error {
	var req processRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if err := task.ValidateID("task_id", req.TaskID); err != nil {
		return err
	}
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"title", req.Title, task.MaxTitleLen},
		{"description", req.Description, task.MaxDescriptionLen},
		{"assignee", req.Assignee, task.MaxAssigneeLen},
	} {
		if len(f.value) > f.max {
			return errs.Field(f.name, "is %d bytes long; the limit is %d", len(f.value), f.max)
		}
	}
	if req.DeadlineSeconds < 0 {
		return errs.Field("deadline_seconds", "must be a positive number of seconds, got %d", req.DeadlineSeconds)
	}
	started, err := s.cfg.Workflows.Start(r.Context(), workflow.Input{
		TaskID:          req.TaskID,
		Title:           req.Title,
		Description:     req.Description,
		Assignee:        req.Assignee,
		DeadlineSeconds: req.DeadlineSeconds,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/workflows/"+started.ID)
	s.writeJSON(w, http.StatusAccepted, started)
	return nil
}

func (s *Server) getWorkflow(w http.ResponseWriter, r *http.Request) error {
	id, err := workflowID(r)
	if err != nil {
		return err
	}
	st, err := s.cfg.Workflows.Get(r.Context(), id)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, st)
	return nil
}

type terminateRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) terminateWorkflow(w http.ResponseWriter, r *http.Request) error {
	id, err := workflowID(r)
	if err != nil {
		return err
	}
	var req terminateRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if len(req.Reason) > 1000 {
		return errs.Field("reason", "is %d bytes long; the limit is 1000", len(req.Reason))
	}
	if err := s.cfg.Workflows.Terminate(r.Context(), id, req.Reason); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Server) purgeWorkflow(w http.ResponseWriter, r *http.Request) error {
	id, err := workflowID(r)
	if err != nil {
		return err
	}
	if err := s.cfg.Workflows.Purge(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) notifier(w http.ResponseWriter, r *http.Request) error {
	s.writeJSON(w, http.StatusOK, s.cfg.Notifier.Status())
	return nil
}

// workflowIDPattern admits the ids workflows get (task-workflow-<task id>) and
// nothing that could not be one.
var workflowIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$`)

func workflowID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !workflowIDPattern.MatchString(id) {
		return "", errs.Field("workflow_id", "must be 1 to 200 letters, digits or . _ : @ -, starting with a letter or digit")
	}
	return id, nil
}
