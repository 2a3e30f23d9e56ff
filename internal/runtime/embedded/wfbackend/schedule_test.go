package wfbackend

import (
	"context"
	"fmt"
	"testing"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/task"
)

// Instances that have started get their turns before new instances start,
// except for one turn in startShare, so that new instances still start while
// running ones keep busy.
func TestStartedInstancesGoFirst(t *testing.T) {
	ctx := context.Background()
	be := openTest(t, WithWorkItemWait(0))
	ex := task.NewTaskExecutor(contractRegistry(t))

	running := make([]string, startShare)
	for i := range running {
		running[i] = fmt.Sprintf("run-%d", i)
		mustCreate(t, be, "WaitsForever", running[i])
		runTurn(t, be, ex, mustGetOrch(t, be, running[i]))
	}
	// New instances are created first, then every running one gets an event.
	fresh := []string{"new-0", "new-1", "new-2"}
	for _, id := range fresh {
		mustCreate(t, be, "WaitsForever", id)
	}
	for _, id := range running {
		if err := be.AddNewOrchestrationEvent(ctx, api.InstanceID(id), event(t, `{"eventId": -1, "eventRaised": {"name": "poke"}}`)); err != nil {
			t.Fatal(err)
		}
	}

	var want []string
	want = append(want, running[:startShare-1]...)
	want = append(want, fresh[0], running[startShare-1], fresh[1], fresh[2])
	for _, id := range want {
		runTurn(t, be, ex, mustGetOrch(t, be, id))
	}
	assertNoOrchWork(t, be)
}
