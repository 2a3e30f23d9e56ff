// Package task is the task domain: what a task is, the statuses it moves through and
// which moves are allowed, and the limits on its fields. It does no I/O; the
// TaskActor applies these rules inside its turns.
package task

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/taskagent/taskagent/internal/errs"
)

// Status is where a task stands.
type Status string

// The statuses.
const (
	Pending    Status = "pending"
	Assigned   Status = "assigned"
	InProgress Status = "in_progress"
	Completed  Status = "completed"
	Overdue    Status = "overdue"
	Cancelled  Status = "cancelled"
)

// Limits on task fields. They are part of the API: a longer value is rejected, never
// cut.
const (
	MaxIDLen          = 128
	MaxTitleLen       = 200
	MaxDescriptionLen = 4000
	MaxAssigneeLen    = 254
	// MaxDeadline is the furthest a deadline may lie in the future.
	MaxDeadline = 5 * 365 * 24 * time.Hour
)

// Task is one task's state.
type Task struct {
	ID          string     `json:"task_id"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Status      Status     `json:"status"`
	Assignee    string     `json:"assignee,omitempty"`
	Deadline    *time.Time `json:"deadline,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// transitions lists, for every status, the statuses SetStatus may move a task to.
// Assigned, Pending and Overdue are never targets: a task becomes assigned by Assign
// (which needs an assignee), pending again by Unassign, and overdue only when its
// deadline passes (MarkOverdue).
var transitions = map[Status][]Status{
	Pending:    {InProgress, Completed, Cancelled},
	Assigned:   {InProgress, Completed, Cancelled},
	InProgress: {Completed, Cancelled},
	Overdue:    {InProgress, Completed, Cancelled},
	Completed:  nil,
	Cancelled:  nil,
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	_, ok := transitions[s]
	return ok
}

// Terminal reports whether no further change is allowed: completed and cancelled
// tasks stay as they are, and never become overdue.
func (s Status) Terminal() bool { return s == Completed || s == Cancelled }

// CanMove reports whether UpdateStatus may move a task from s to to.
func (s Status) CanMove(to Status) bool {
	for _, t := range transitions[s] {
		if t == to {
			return true
		}
	}
	return false
}

// Statuses lists every status in lifecycle order.
func Statuses() []Status {
	return []Status{Pending, Assigned, InProgress, Overdue, Completed, Cancelled}
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]*$`)

// ValidateID checks an id of a task or a user: 1 to MaxIDLen characters of letters,
// digits and . _ : @ -, starting with a letter or digit. field names the input field
// in the error.
func ValidateID(field, id string) error {
	switch {
	case id == "":
		return errs.Field(field, "is required")
	case len(id) > MaxIDLen:
		return errs.Field(field, "is %d bytes long; the limit is %d", len(id), MaxIDLen)
	case !idPattern.MatchString(id):
		return errs.Field(field, "may hold only letters, digits and . _ : @ -, and must start with a letter or digit")
	}
	return nil
}

// Spec is what a task is created from.
type Spec struct {
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Assignee    string     `json:"assignee,omitempty"`
	Deadline    *time.Time `json:"deadline,omitempty"`
}

// Validate checks the spec's fields against their limits. It does not apply the
// workflow's stricter rules (see workflow validation).
func (s Spec) Validate() error {
	if strings.TrimSpace(s.Title) == "" {
		return errs.Field("title", "is required")
	}
	if err := checkText("title", s.Title, MaxTitleLen); err != nil {
		return err
	}
	if err := checkText("description", s.Description, MaxDescriptionLen); err != nil {
		return err
	}
	if s.Assignee != "" {
		if err := ValidateAssignee(s.Assignee); err != nil {
			return err
		}
	}
	return nil
}

// ValidateAssignee checks an assignee: a non-blank name or address of at most
// MaxAssigneeLen bytes without control characters.
func ValidateAssignee(a string) error {
	if strings.TrimSpace(a) == "" {
		return errs.Field("assignee", "is required")
	}
	return checkText("assignee", a, MaxAssigneeLen)
}

// ValidateDeadline checks a deadline given as seconds from now.
func ValidateDeadline(seconds int64) error {
	if seconds <= 0 {
		return errs.Field("deadline_seconds", "must be a positive number of seconds, got %d", seconds)
	}
	if seconds > int64(MaxDeadline/time.Second) {
		return errs.Field("deadline_seconds", "is more than %d seconds away", int64(MaxDeadline/time.Second))
	}
	return nil
}

func checkText(field, s string, max int) error {
	if len(s) > max {
		return errs.Field(field, "is %d bytes long; the limit is %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return errs.Field(field, "is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' && r != '\r' {
			return errs.Field(field, "contains control character %U", r)
		}
	}
	return nil
}

// New returns a new task from a validated spec: pending, or assigned when the spec
// names an assignee.
func New(id string, s Spec, now time.Time) Task {
	t := Task{
		ID:          id,
		Title:       s.Title,
		Description: s.Description,
		Status:      Pending,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	if s.Assignee != "" {
		t.Assignee = s.Assignee
		t.Status = Assigned
	}
	if s.Deadline != nil {
		d := s.Deadline.UTC()
		t.Deadline = &d
	}
	return t
}

// SameSpec reports whether s would create t again: the title and description match.
// The assignee and deadline are left out because they change after creation (a
// workflow creates a task and assigns it in a later step).
func (t Task) SameSpec(s Spec) bool {
	return t.Title == s.Title && t.Description == s.Description
}

// SetStatus moves the task to status to. Moving to the status it already has is a
// no-op that reports changed == false.
func (t *Task) SetStatus(to Status, now time.Time) (changed bool, err error) {
	if !to.Valid() {
		return false, errs.Field("status", "%q is not a status; use one of %s", to, statusList())
	}
	if t.Status == to {
		return false, nil
	}
	switch to {
	case Assigned, Pending:
		return false, errs.E(errs.Conflict, "a task becomes %s by assigning or unassigning it, not by setting its status", to)
	case Overdue:
		return false, errs.E(errs.Conflict, "a task becomes overdue when its deadline passes, not by setting its status")
	}
	if !t.Status.CanMove(to) {
		return false, errs.E(errs.Conflict, "task %s is %s and cannot become %s", t.ID, t.Status, to)
	}
	t.Status = to
	t.UpdatedAt = now
	return true, nil
}

// Assign gives the task to assignee. A pending task becomes assigned; a task in
// progress or overdue keeps its status with the new assignee. Assigning to the
// current assignee is a no-op that reports changed == false.
func (t *Task) Assign(assignee string, now time.Time) (changed bool, err error) {
	if t.Status.Terminal() {
		return false, errs.E(errs.Conflict, "task %s is %s and cannot be assigned", t.ID, t.Status)
	}
	if t.Assignee == assignee {
		return false, nil
	}
	t.Assignee = assignee
	if t.Status == Pending {
		t.Status = Assigned
	}
	t.UpdatedAt = now
	return true, nil
}

// Unassign clears the assignee and returns an assigned or in-progress task to
// pending; an overdue task stays overdue. When only is not empty, the task is
// unassigned only if only is its assignee, so that undoing one assignment never
// removes a later one. A task with no assignee (or another one than only) is left
// as it is and changed is false.
func (t *Task) Unassign(only string, now time.Time) (changed bool, err error) {
	if t.Status.Terminal() {
		return false, errs.E(errs.Conflict, "task %s is %s and cannot be unassigned", t.ID, t.Status)
	}
	if t.Assignee == "" || (only != "" && t.Assignee != only) {
		return false, nil
	}
	t.Assignee = ""
	if t.Status == Assigned || t.Status == InProgress {
		t.Status = Pending
	}
	t.UpdatedAt = now
	return true, nil
}

// SetDeadline sets the task's deadline. An overdue task whose deadline moves into the
// future is no longer overdue: it returns to assigned, or pending with no assignee.
// Setting the deadline it already has is a no-op that reports changed == false.
func (t *Task) SetDeadline(deadline, now time.Time) (changed bool, err error) {
	if t.Status.Terminal() {
		return false, errs.E(errs.Conflict, "task %s is %s; its deadline cannot change", t.ID, t.Status)
	}
	deadline = deadline.UTC()
	if t.Deadline != nil && t.Deadline.Equal(deadline) {
		return false, nil
	}
	t.Deadline = &deadline
	if t.Status == Overdue && deadline.After(now) {
		t.Status = Pending
		if t.Assignee != "" {
			t.Status = Assigned
		}
	}
	t.UpdatedAt = now
	return true, nil
}

// MarkOverdue makes the task overdue when its deadline has come. It is a no-op
// (changed == false) for a task that is finished, already overdue, or whose deadline
// is not the one the reminder was set for (it was moved since).
func (t *Task) MarkOverdue(deadline, now time.Time) (changed bool) {
	if t.Status.Terminal() || t.Status == Overdue || t.Deadline == nil || !t.Deadline.Equal(deadline) {
		return false
	}
	t.Status = Overdue
	t.UpdatedAt = now
	return true
}

func statusList() string {
	var b strings.Builder
	for i, s := range Statuses() {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s", s)
	}
	return b.String()
}
