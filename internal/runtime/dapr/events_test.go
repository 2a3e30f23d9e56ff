package dapr

import (
	"testing"

	"github.com/taskagent/taskagent/internal/event"
)

func TestEventLogReadsAfterAnIDAndDropsDuplicates(t *testing.T) {
	l := newEventLog(3)
	for i, id := range []string{"a", "b", "a", "c", "d"} { // "a" delivered twice
		l.append(id, event.Event{Topic: []string{"x", "y"}[i%2], Type: id})
	}
	all, err := l.Read(t.Context(), "", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Four distinct events, the oldest dropped by the bound of 3.
	if len(all) != 3 || all[0].Type != "b" || all[0].ID != 2 || all[2].Type != "d" || all[2].ID != 4 {
		t.Fatalf("events = %+v", all)
	}
	after, _ := l.Read(t.Context(), "", 2, 10)
	if len(after) != 2 || after[0].ID != 3 {
		t.Fatalf("after 2: %+v", after)
	}
	onY, _ := l.Read(t.Context(), "y", 0, 10)
	if len(onY) != 2 || onY[0].Type != "b" || onY[1].Type != "c" {
		t.Fatalf("topic y: %+v", onY)
	}
	if page, _ := l.Read(t.Context(), "", 0, 1); len(page) != 1 || page[0].ID != 2 {
		t.Fatalf("limit 1: %+v", page)
	}
}
