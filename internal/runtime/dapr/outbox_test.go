package dapr

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/actor"
	"github.com/taskagent/taskagent/internal/event"
	"github.com/taskagent/taskagent/internal/runtime/dapr/daprtest"
)

// loseAnswer passes requests to daprd and, for the first state save of the
// actor whose state path is path, drops daprd's answer after daprd has
// applied the save: what a turn sees when its caller gives up (the context is
// canceled) while daprd is saving.
type loseAnswer struct {
	base http.RoundTripper
	path string

	mu   sync.Mutex
	lost bool
}

func (l *loseAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := l.base.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost || req.URL.Path != l.path {
		return res, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost {
		return res, nil
	}
	l.lost = true
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return nil, errors.New("answer lost")
}

// TestEventsOfASaveWhoseAnswerWasLost checks that the events of a turn whose
// save daprd applied, but whose answer the app never got, are published by the
// actor's next turn instead of being overwritten by that turn's outbox.
func TestEventsOfASaveWhoseAnswerWasLost(t *testing.T) {
	h := daprtest.StartActorHost(t, AppID, daprtest.SchedulerReminders)
	emit := actor.Typed(func(ctx context.Context, t actor.Turn, name string) (int, error) {
		if err := t.Set("last", name); err != nil {
			return 0, err
		}
		return 0, t.Publish(event.TopicTasks, name, map[string]string{"id": t.ActorID()})
	})
	rt, err := New(Config{
		HTTPPort: h.Sidecar.HTTPPort, GRPCPort: h.Sidecar.GRPCPort,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, []actor.Type{{Name: "Emitter", Methods: map[string]actor.Method{"Emit": emit}}})
	if err != nil {
		t.Fatal(err)
	}
	lossy := &loseAnswer{base: rt.sc.http.Transport, path: "/v1.0/actors/Emitter/e1/state"}
	rt.sc.http.Transport = lossy
	// Registered before Serve's cleanup, so it runs after the server closed.
	t.Cleanup(func() { rt.Close() })
	h.Serve(t, rt.Handler(), "Emitter")

	ctx := t.Context()
	if _, err := rt.Invoke(ctx, "Emitter", "e1", "Emit", []byte(`"first"`)); err == nil {
		t.Fatal("Emit first: no error, want the lost answer's")
	}
	if _, err := rt.Invoke(ctx, "Emitter", "e1", "Emit", []byte(`"second"`)); err != nil {
		t.Fatalf("Emit second: %v", err)
	}
	wait, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var after int64
	var got []string
	for {
		evs, err := rt.Events().Read(ctx, event.TopicTasks, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, e := range evs {
			got = append(got, e.Type)
			after = e.ID
		}
		slices.Sort(got) // Redis pub/sub may hand them over in another order
		if slices.Equal(got, []string{"first", "second"}) {
			return
		}
		if err := rt.Events().Wait(wait, after); err != nil {
			t.Fatalf("events received: %q, want first and second, once each (%v)", got, err)
		}
	}
}
