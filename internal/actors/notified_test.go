package actors_test

import (
	"context"
	"testing"

	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/errs"
)

func TestRecordNotificationOncePerID(t *testing.T) {
	h, c := newTaskHost(t)
	ctx := context.Background()
	if _, err := c.RecordNotification(ctx, taskID, actors.NotificationInput{ID: "wf-1", Assignee: "alice"}); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("notification on a missing task: %v, want not_found", err)
	}
	mustCreate(t, c, spec)
	in := actors.NotificationInput{ID: "wf-1", Assignee: "alice", Notifier: "log"}
	for i, want := range []bool{true, false} {
		res, err := c.RecordNotification(ctx, taskID, in)
		if err != nil {
			t.Fatal(err)
		}
		if res.Recorded != want {
			t.Fatalf("call %d: recorded = %v, want %v", i+1, res.Recorded, want)
		}
	}
	if _, err := c.RecordNotification(ctx, taskID, actors.NotificationInput{ID: "wf-2", Assignee: "alice"}); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, h, actors.EventTaskCreated, actors.EventTaskNotified, actors.EventTaskNotified)
}
