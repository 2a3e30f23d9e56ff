package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/task"
)

// createTaskRequest is the body of POST /tasks, with the seed's field names.
type createTaskRequest struct {
	TaskID      string `json:"task_id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Assignee    string `json:"assignee"`
	// DeadlineSeconds is a pointer so that an explicit 0 is rejected rather than
	// read as "no deadline".
	DeadlineSeconds *int64 `json:"deadline_seconds"`
}

// createTask answers 201 with a new task and 200 with the existing one when the
// same task_id was created before with the same title and description, so a client
// that lost the first response can safely send the request again.
func (s *Server) createTask(w http.ResponseWriter, r *http.Request) error {
	var req createTaskRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if err := task.ValidateID("task_id", req.TaskID); err != nil {
		return err
	}
	spec := task.Spec{Title: req.Title, Description: req.Description, Assignee: req.Assignee}
	if err := spec.Validate(); err != nil {
		return err
	}
	if req.DeadlineSeconds != nil {
		d, err := s.deadline(*req.DeadlineSeconds)
		if err != nil {
			return err
		}
		spec.Deadline = &d
	}
	res, err := s.cfg.Tasks.Create(r.Context(), req.TaskID, spec)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
		w.Header().Set("Location", "/tasks/"+url.PathEscape(res.Task.ID))
	}
	s.writeJSON(w, status, res.Task)
	return nil
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id", "task_id")
	if err != nil {
		return err
	}
	t, err := s.cfg.Tasks.Get(r.Context(), id)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) assignTask(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id", "task_id")
	if err != nil {
		return err
	}
	var req struct {
		Assignee string `json:"assignee"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if err := task.ValidateAssignee(req.Assignee); err != nil {
		return err
	}
	t, err := s.cfg.Tasks.Assign(r.Context(), id, req.Assignee)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, t)
	return nil
}

// unassignTask takes an optional body: {"assignee": "x"} unassigns only if x is the
// assignee, which is how a client undoes its own assignment without removing a
// later one.
func (s *Server) unassignTask(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id", "task_id")
	if err != nil {
		return err
	}
	var req struct {
		Assignee string `json:"assignee"`
	}
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if req.Assignee != "" {
		if err := task.ValidateAssignee(req.Assignee); err != nil {
			return err
		}
	}
	t, err := s.cfg.Tasks.Unassign(r.Context(), id, req.Assignee)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) updateStatus(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id", "task_id")
	if err != nil {
		return err
	}
	var req struct {
		Status task.Status `json:"status"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if err := validateStatus(req.Status); err != nil {
		return err
	}
	t, err := s.cfg.Tasks.UpdateStatus(r.Context(), id, req.Status)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) setDeadline(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id", "task_id")
	if err != nil {
		return err
	}
	var req struct {
		DeadlineSeconds *int64 `json:"deadline_seconds"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if req.DeadlineSeconds == nil {
		return errs.Field("deadline_seconds", "is required")
	}
	d, err := s.deadline(*req.DeadlineSeconds)
	if err != nil {
		return err
	}
	t, err := s.cfg.Tasks.SetDeadline(r.Context(), id, d)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, t)
	return nil
}

// deadline turns seconds from now into the absolute time the actors store: an
// absolute deadline stays the same when a call is retried.
func (s *Server) deadline(seconds int64) (time.Time, error) {
	if err := task.ValidateDeadline(seconds); err != nil {
		return time.Time{}, err
	}
	return s.cfg.Now().Add(time.Duration(seconds) * time.Second).UTC(), nil
}

// validateStatus rejects an unknown status here, as a 400 naming the field, before
// an actor is called; whether the move is allowed is the task's rule to decide.
func validateStatus(st task.Status) error {
	if st == "" {
		return errs.Field("status", "is required")
	}
	if !st.Valid() {
		names := make([]string, 0, len(task.Statuses()))
		for _, v := range task.Statuses() {
			names = append(names, string(v))
		}
		return errs.Field("status", "%q is not a status; use one of %s", st, strings.Join(names, ", "))
	}
	return nil
}
