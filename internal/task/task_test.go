package task_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/task"
)

var (
	t0    = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	later = t0.Add(time.Minute)
)

func ptr[T any](v T) *T { return &v }

// wantField checks that err is an Invalid error about field.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	if !errors.Is(err, errs.Invalid) {
		t.Fatalf("got error %v (kind %q), want kind %q", err, errs.KindOf(err), errs.Invalid)
	}
	var e *errs.Error
	if !errors.As(err, &e) || e.Field != field {
		t.Fatalf("got error %v, want one about field %q", err, field)
	}
}

// wantKind checks err's kind; an empty want means no error.
func wantKind(t *testing.T, err error, want errs.Kind) {
	t.Helper()
	if got := errs.KindOf(err); got != want {
		t.Fatalf("got error %v (kind %q), want kind %q", err, got, want)
	}
}

func TestStatusPredicates(t *testing.T) {
	for _, s := range task.Statuses() {
		if !s.Valid() {
			t.Errorf("%s.Valid() = false, want true", s)
		}
		wantTerminal := s == task.Completed || s == task.Cancelled
		if got := s.Terminal(); got != wantTerminal {
			t.Errorf("%s.Terminal() = %v, want %v", s, got, wantTerminal)
		}
	}
	for _, s := range []task.Status{"", "done", "PENDING", "uninitialized"} {
		if s.Valid() {
			t.Errorf("%q.Valid() = true, want false", s)
		}
	}
}

func TestSetStatus(t *testing.T) {
	tests := []struct {
		from, to    task.Status
		wantChanged bool
		wantKind    errs.Kind // "" for success
	}{
		{task.Pending, task.InProgress, true, ""},
		{task.Pending, task.Completed, true, ""},
		{task.Pending, task.Cancelled, true, ""},
		{task.Assigned, task.InProgress, true, ""},
		{task.Assigned, task.Completed, true, ""},
		{task.Assigned, task.Cancelled, true, ""},
		{task.InProgress, task.Completed, true, ""},
		{task.InProgress, task.Cancelled, true, ""},
		{task.Overdue, task.InProgress, true, ""},
		{task.Overdue, task.Completed, true, ""},
		{task.Overdue, task.Cancelled, true, ""},

		// The status it already has: a no-op, so that a retried call succeeds.
		{task.Pending, task.Pending, false, ""},
		{task.InProgress, task.InProgress, false, ""},
		{task.Completed, task.Completed, false, ""},
		{task.Cancelled, task.Cancelled, false, ""},
		{task.Overdue, task.Overdue, false, ""},

		// Statuses that only Assign, Unassign and MarkOverdue set.
		{task.Pending, task.Assigned, false, errs.Conflict},
		{task.InProgress, task.Pending, false, errs.Conflict},
		{task.InProgress, task.Assigned, false, errs.Conflict},
		{task.Assigned, task.Pending, false, errs.Conflict},
		{task.Pending, task.Overdue, false, errs.Conflict},
		{task.InProgress, task.Overdue, false, errs.Conflict},

		// Out of terminal statuses.
		{task.Completed, task.InProgress, false, errs.Conflict},
		{task.Completed, task.Cancelled, false, errs.Conflict},
		{task.Cancelled, task.Completed, false, errs.Conflict},
		{task.Cancelled, task.InProgress, false, errs.Conflict},

		// Not a status at all.
		{task.Pending, "done", false, errs.Invalid},
		{task.Pending, "", false, errs.Invalid},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+"->"+string(tt.to), func(t *testing.T) {
			tk := task.Task{ID: "t1", Status: tt.from, UpdatedAt: t0}
			before := tk
			changed, err := tk.SetStatus(tt.to, later)
			wantKind(t, err, tt.wantKind)
			if tt.wantKind == errs.Invalid {
				wantField(t, err, "status")
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			want := before
			if tt.wantChanged {
				want.Status = tt.to
				want.UpdatedAt = later
			}
			if diff := cmp.Diff(want, tk); diff != "" {
				t.Errorf("task after SetStatus (-want +got):\n%s", diff)
			}
			if got := tt.from.CanMove(tt.to); tt.wantChanged && !got {
				t.Errorf("%s.CanMove(%s) = false, want true", tt.from, tt.to)
			}
		})
	}
}

func TestAssign(t *testing.T) {
	tests := []struct {
		name         string
		in           task.Task
		assignee     string
		want         task.Task
		wantChanged  bool
		wantConflict bool
	}{
		{
			name:        "pending becomes assigned",
			in:          task.Task{Status: task.Pending, UpdatedAt: t0},
			assignee:    "alice",
			want:        task.Task{Status: task.Assigned, Assignee: "alice", UpdatedAt: later},
			wantChanged: true,
		},
		{
			name:     "same assignee is a no-op",
			in:       task.Task{Status: task.Assigned, Assignee: "alice", UpdatedAt: t0},
			assignee: "alice",
			want:     task.Task{Status: task.Assigned, Assignee: "alice", UpdatedAt: t0},
		},
		{
			name:        "reassign keeps assigned",
			in:          task.Task{Status: task.Assigned, Assignee: "alice", UpdatedAt: t0},
			assignee:    "bob",
			want:        task.Task{Status: task.Assigned, Assignee: "bob", UpdatedAt: later},
			wantChanged: true,
		},
		{
			name:        "in progress keeps its status",
			in:          task.Task{Status: task.InProgress, Assignee: "alice", UpdatedAt: t0},
			assignee:    "bob",
			want:        task.Task{Status: task.InProgress, Assignee: "bob", UpdatedAt: later},
			wantChanged: true,
		},
		{
			name:        "overdue stays overdue",
			in:          task.Task{Status: task.Overdue, UpdatedAt: t0},
			assignee:    "bob",
			want:        task.Task{Status: task.Overdue, Assignee: "bob", UpdatedAt: later},
			wantChanged: true,
		},
		{
			name:         "completed refuses",
			in:           task.Task{Status: task.Completed, Assignee: "alice", UpdatedAt: t0},
			assignee:     "bob",
			want:         task.Task{Status: task.Completed, Assignee: "alice", UpdatedAt: t0},
			wantConflict: true,
		},
		{
			name:         "cancelled refuses even the same assignee",
			in:           task.Task{Status: task.Cancelled, Assignee: "alice", UpdatedAt: t0},
			assignee:     "alice",
			want:         task.Task{Status: task.Cancelled, Assignee: "alice", UpdatedAt: t0},
			wantConflict: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := tt.in
			changed, err := tk.Assign(tt.assignee, later)
			if tt.wantConflict {
				wantKind(t, err, errs.Conflict)
			} else {
				wantKind(t, err, "")
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if diff := cmp.Diff(tt.want, tk); diff != "" {
				t.Errorf("task after Assign (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnassign(t *testing.T) {
	tests := []struct {
		name         string
		in           task.Task
		only         string
		want         task.Task
		wantChanged  bool
		wantConflict bool
	}{
		{
			name:        "assigned returns to pending",
			in:          task.Task{Status: task.Assigned, Assignee: "alice", UpdatedAt: t0},
			want:        task.Task{Status: task.Pending, UpdatedAt: later},
			wantChanged: true,
		},
		{
			name:        "in progress returns to pending",
			in:          task.Task{Status: task.InProgress, Assignee: "alice", UpdatedAt: t0},
			want:        task.Task{Status: task.Pending, UpdatedAt: later},
			wantChanged: true,
		},
		{
			name:        "overdue stays overdue",
			in:          task.Task{Status: task.Overdue, Assignee: "alice", UpdatedAt: t0},
			want:        task.Task{Status: task.Overdue, UpdatedAt: later},
			wantChanged: true,
		},
		{
			name: "no assignee is a no-op",
			in:   task.Task{Status: task.Pending, UpdatedAt: t0},
			want: task.Task{Status: task.Pending, UpdatedAt: t0},
		},
		{
			name:        "only matching the assignee unassigns",
			in:          task.Task{Status: task.Assigned, Assignee: "alice", UpdatedAt: t0},
			only:        "alice",
			want:        task.Task{Status: task.Pending, UpdatedAt: later},
			wantChanged: true,
		},
		{
			// A compensation for alice's assignment must not undo bob's, made later.
			name: "only naming someone else leaves the assignee",
			in:   task.Task{Status: task.Assigned, Assignee: "bob", UpdatedAt: t0},
			only: "alice",
			want: task.Task{Status: task.Assigned, Assignee: "bob", UpdatedAt: t0},
		},
		{
			name: "only on an unassigned task is a no-op",
			in:   task.Task{Status: task.Pending, UpdatedAt: t0},
			only: "alice",
			want: task.Task{Status: task.Pending, UpdatedAt: t0},
		},
		{
			name:         "completed refuses",
			in:           task.Task{Status: task.Completed, Assignee: "alice", UpdatedAt: t0},
			want:         task.Task{Status: task.Completed, Assignee: "alice", UpdatedAt: t0},
			wantConflict: true,
		},
		{
			name:         "cancelled refuses",
			in:           task.Task{Status: task.Cancelled, UpdatedAt: t0},
			want:         task.Task{Status: task.Cancelled, UpdatedAt: t0},
			wantConflict: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := tt.in
			changed, err := tk.Unassign(tt.only, later)
			if tt.wantConflict {
				wantKind(t, err, errs.Conflict)
			} else {
				wantKind(t, err, "")
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if diff := cmp.Diff(tt.want, tk); diff != "" {
				t.Errorf("task after Unassign (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetDeadline(t *testing.T) {
	past := t0.Add(-time.Hour)
	future := later.Add(time.Hour)
	// A deadline given in another zone is stored in UTC.
	futureLocal := future.In(time.FixedZone("CET", 3600))

	tests := []struct {
		name         string
		in           task.Task
		deadline     time.Time
		want         task.Task
		wantChanged  bool
		wantConflict bool
	}{
		{
			name:        "first deadline",
			in:          task.Task{Status: task.Pending, UpdatedAt: t0},
			deadline:    futureLocal,
			want:        task.Task{Status: task.Pending, Deadline: ptr(future), UpdatedAt: later},
			wantChanged: true,
		},
		{
			name:     "same deadline is a no-op",
			in:       task.Task{Status: task.Assigned, Assignee: "a", Deadline: ptr(future), UpdatedAt: t0},
			deadline: futureLocal,
			want:     task.Task{Status: task.Assigned, Assignee: "a", Deadline: ptr(future), UpdatedAt: t0},
		},
		{
			name:        "moved deadline",
			in:          task.Task{Status: task.InProgress, Deadline: ptr(past), UpdatedAt: t0},
			deadline:    future,
			want:        task.Task{Status: task.InProgress, Deadline: ptr(future), UpdatedAt: later},
			wantChanged: true,
		},
		{
			name:        "overdue with assignee moved to the future becomes assigned",
			in:          task.Task{Status: task.Overdue, Assignee: "a", Deadline: ptr(past), UpdatedAt: t0},
			deadline:    future,
			want:        task.Task{Status: task.Assigned, Assignee: "a", Deadline: ptr(future), UpdatedAt: later},
			wantChanged: true,
		},
		{
			name:        "overdue without assignee moved to the future becomes pending",
			in:          task.Task{Status: task.Overdue, Deadline: ptr(past), UpdatedAt: t0},
			deadline:    future,
			want:        task.Task{Status: task.Pending, Deadline: ptr(future), UpdatedAt: later},
			wantChanged: true,
		},
		{
			name:        "overdue moved to another past deadline stays overdue",
			in:          task.Task{Status: task.Overdue, Deadline: ptr(past), UpdatedAt: t0},
			deadline:    past.Add(time.Minute),
			want:        task.Task{Status: task.Overdue, Deadline: ptr(past.Add(time.Minute)), UpdatedAt: later},
			wantChanged: true,
		},
		{
			name:         "completed refuses",
			in:           task.Task{Status: task.Completed, UpdatedAt: t0},
			deadline:     future,
			want:         task.Task{Status: task.Completed, UpdatedAt: t0},
			wantConflict: true,
		},
		{
			name:         "cancelled refuses",
			in:           task.Task{Status: task.Cancelled, Deadline: ptr(past), UpdatedAt: t0},
			deadline:     future,
			want:         task.Task{Status: task.Cancelled, Deadline: ptr(past), UpdatedAt: t0},
			wantConflict: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := tt.in
			changed, err := tk.SetDeadline(tt.deadline, later)
			if tt.wantConflict {
				wantKind(t, err, errs.Conflict)
			} else {
				wantKind(t, err, "")
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if diff := cmp.Diff(tt.want, tk); diff != "" {
				t.Errorf("task after SetDeadline (-want +got):\n%s", diff)
			}
			if tk.Deadline != nil && tk.Deadline.Location() != time.UTC {
				t.Errorf("deadline location = %v, want UTC", tk.Deadline.Location())
			}
		})
	}
}

func TestMarkOverdue(t *testing.T) {
	deadline := t0
	moved := t0.Add(time.Hour)
	tests := []struct {
		name        string
		in          task.Task
		deadline    time.Time
		wantChanged bool
	}{
		{"pending", task.Task{Status: task.Pending, Deadline: ptr(deadline)}, deadline, true},
		{"assigned", task.Task{Status: task.Assigned, Assignee: "a", Deadline: ptr(deadline)}, deadline, true},
		{"in progress", task.Task{Status: task.InProgress, Deadline: ptr(deadline)}, deadline, true},
		{"deadline in another zone", task.Task{Status: task.Pending, Deadline: ptr(deadline)}, deadline.In(time.FixedZone("X", -7200)), true},
		{"completed", task.Task{Status: task.Completed, Deadline: ptr(deadline)}, deadline, false},
		{"cancelled", task.Task{Status: task.Cancelled, Deadline: ptr(deadline)}, deadline, false},
		{"already overdue", task.Task{Status: task.Overdue, Deadline: ptr(deadline)}, deadline, false},
		{"stale deadline", task.Task{Status: task.Assigned, Deadline: ptr(moved)}, deadline, false},
		{"no deadline", task.Task{Status: task.Pending}, deadline, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := tt.in
			tk.UpdatedAt = t0
			before := tk
			changed := tk.MarkOverdue(tt.deadline, later)
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			want := before
			if tt.wantChanged {
				want.Status = task.Overdue
				want.UpdatedAt = later
			}
			if diff := cmp.Diff(want, tk); diff != "" {
				t.Errorf("task after MarkOverdue (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNew(t *testing.T) {
	deadline := time.Date(2025, 3, 2, 14, 0, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		spec task.Spec
		want task.Task
	}{
		{
			name: "pending",
			spec: task.Spec{Title: "Review PR #42", Description: "auth refactor"},
			want: task.Task{ID: "t1", Title: "Review PR #42", Description: "auth refactor", Status: task.Pending, CreatedAt: t0, UpdatedAt: t0},
		},
		{
			name: "assigned with deadline in UTC",
			spec: task.Spec{Title: "x", Assignee: "alice", Deadline: &deadline},
			want: task.Task{ID: "t1", Title: "x", Status: task.Assigned, Assignee: "alice", Deadline: ptr(deadline.UTC()), CreatedAt: t0, UpdatedAt: t0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := task.New("t1", tt.spec, t0)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("New (-want +got):\n%s", diff)
			}
			if got.Deadline != nil && got.Deadline.Location() != time.UTC {
				t.Errorf("deadline location = %v, want UTC", got.Deadline.Location())
			}
			if got.Deadline != nil && got.Deadline == tt.spec.Deadline {
				t.Error("task shares the spec's deadline pointer; changing one would change the other")
			}
		})
	}
}

func TestSameSpec(t *testing.T) {
	tk := task.Task{Title: "a", Description: "b", Assignee: "alice"}
	tests := []struct {
		spec task.Spec
		want bool
	}{
		{task.Spec{Title: "a", Description: "b"}, true},
		// The assignee and deadline change after creation and do not count.
		{task.Spec{Title: "a", Description: "b", Assignee: "bob", Deadline: ptr(t0)}, true},
		{task.Spec{Title: "a", Description: "c"}, false},
		{task.Spec{Title: "A", Description: "b"}, false},
	}
	for _, tt := range tests {
		if got := tk.SameSpec(tt.spec); got != tt.want {
			t.Errorf("SameSpec(%+v) = %v, want %v", tt.spec, got, tt.want)
		}
	}
}

func TestValidateID(t *testing.T) {
	valid := []string{
		"t",
		"task-001",
		"user-alice",
		"alice@example.com",
		"ns:task_1.2",
		"0abc",
		strings.Repeat("a", task.MaxIDLen),
	}
	for _, id := range valid {
		if err := task.ValidateID("task_id", id); err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", id, err)
		}
	}
	invalid := []string{
		"",
		strings.Repeat("a", task.MaxIDLen+1),
		"-task",
		".task",
		"_task",
		"task 1",
		"task/1",
		"../etc",
		"task\n",
		"tâche",
		"task?x=1",
		"task%2F",
	}
	for _, id := range invalid {
		err := task.ValidateID("user_id", id)
		if err == nil {
			t.Errorf("ValidateID(%q) = nil, want an error", id)
			continue
		}
		wantField(t, err, "user_id")
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name      string
		spec      task.Spec
		wantField string // "" when valid
	}{
		{"minimal", task.Spec{Title: "x"}, ""},
		{"full", task.Spec{Title: "Review PR #42", Description: "line one\n\tline two\r\n", Assignee: "alice@example.com", Deadline: ptr(t0)}, ""},
		{"title at limit", task.Spec{Title: strings.Repeat("a", task.MaxTitleLen)}, ""},
		{"multibyte title at limit", task.Spec{Title: strings.Repeat("é", task.MaxTitleLen/2)}, ""},
		{"description at limit", task.Spec{Title: "x", Description: strings.Repeat("a", task.MaxDescriptionLen)}, ""},
		{"assignee at limit", task.Spec{Title: "x", Assignee: strings.Repeat("a", task.MaxAssigneeLen)}, ""},

		{"no title", task.Spec{}, "title"},
		{"blank title", task.Spec{Title: " \t\n"}, "title"},
		{"title over limit", task.Spec{Title: strings.Repeat("a", task.MaxTitleLen+1)}, "title"},
		// Limits are in bytes: 101 two-byte runes are 202 bytes.
		{"multibyte title over limit", task.Spec{Title: strings.Repeat("é", task.MaxTitleLen/2+1)}, "title"},
		{"title with NUL", task.Spec{Title: "a\x00b"}, "title"},
		{"title with escape", task.Spec{Title: "a\x1b[31mred"}, "title"},
		{"title not UTF-8", task.Spec{Title: "a\xffb"}, "title"},
		{"description over limit", task.Spec{Title: "x", Description: strings.Repeat("a", task.MaxDescriptionLen+1)}, "description"},
		{"description with control character", task.Spec{Title: "x", Description: "a\x07"}, "description"},
		{"description not UTF-8", task.Spec{Title: "x", Description: "\xc3"}, "description"},
		{"blank assignee", task.Spec{Title: "x", Assignee: "  "}, "assignee"},
		{"assignee over limit", task.Spec{Title: "x", Assignee: strings.Repeat("a", task.MaxAssigneeLen+1)}, "assignee"},
		{"assignee with control character", task.Spec{Title: "x", Assignee: "al\x01ice"}, "assignee"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			wantField(t, err, tt.wantField)
		})
	}
}

func TestValidateAssignee(t *testing.T) {
	if err := task.ValidateAssignee("Alice Smith <alice@example.com>"); err != nil {
		t.Errorf("ValidateAssignee(name and address) = %v, want nil", err)
	}
	for _, a := range []string{"", " ", "a\x00", strings.Repeat("a", task.MaxAssigneeLen+1)} {
		wantField(t, task.ValidateAssignee(a), "assignee")
	}
}

func TestValidateDeadline(t *testing.T) {
	max := int64(task.MaxDeadline / time.Second)
	for _, s := range []int64{1, 60, 3600, max} {
		if err := task.ValidateDeadline(s); err != nil {
			t.Errorf("ValidateDeadline(%d) = %v, want nil", s, err)
		}
	}
	for _, s := range []int64{0, -1, max + 1} {
		wantField(t, task.ValidateDeadline(s), "deadline_seconds")
	}
}
