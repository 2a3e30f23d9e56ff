// Package dtworker runs durabletask-go's task hub worker (v0.5.0) over a
// backend.Backend, with a shutdown that does not race, and with work items run
// on goroutines that are reused (see pooledExecutor).
//
// # The race it avoids
//
// Each of the hub's two workers has one poller goroutine. A poller calls
// sync.WaitGroup.Add before it fetches a work item, and the hub's Shutdown
// calls Wait on the same WaitGroup once it has cancelled the pollers. A poller
// that was between two fetches when Shutdown began may Add after nothing has
// synchronised it with the goroutine about to Wait: an Add from zero
// concurrent with Wait, which the race detector reports (and which the
// WaitGroup documentation forbids).
//
// Shutdown here first stops the backend and the gate in front of it handing out
// work, then waits until both pollers are parked in a fetch that returns only
// when they are cancelled, having registered under a mutex that Shutdown then
// takes. Their last Add therefore happens before the hub's Wait, and after the
// cancellation they return without adding again.
package dtworker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/microsoft/durabletask-go/backend"
)

// Worker is a running task hub worker.
type Worker struct {
	hub  backend.TaskHubWorker
	gate *gate
}

// Start starts orchestration and activity workers over be, each running up to
// parallelism work items at once, until Shutdown. Unlike
// backend.TaskHubWorker.Start, the end of ctx does not stop them: pollers that
// exit on their own could not park, and Shutdown needs them parked.
func Start(ctx context.Context, be backend.Backend, ex backend.Executor, log backend.Logger, parallelism int32) (*Worker, error) {
	ctx = context.WithoutCancel(ctx)
	g := &gate{Backend: be}
	// Each of the two workers runs up to parallelism calls at once.
	ex = &pooledExecutor{Executor: ex, pool: newStackPool(2 * int(parallelism))}
	hub := backend.NewTaskHubWorker(g,
		backend.NewOrchestrationWorker(g, ex, log, backend.WithMaxParallelism(parallelism)),
		backend.NewActivityTaskWorker(g, ex, log, backend.WithMaxParallelism(parallelism)),
		log)
	if err := hub.Start(ctx); err != nil {
		return nil, err
	}
	return &Worker{hub: hub, gate: g}, nil
}

// Shutdown stops the workers: no more work is handed out, the work items in
// flight finish (their context is cancelled, as durabletask-go does), and the
// pollers exit. If ctx ends before both pollers are parked, the hub is shut
// down anyway and the error says so.
func (w *Worker) Shutdown(ctx context.Context) error {
	if err := w.gate.Backend.Stop(ctx); err != nil {
		return fmt.Errorf("stop workflow backend: %w", err)
	}
	parked := w.gate.park(ctx)
	if parked != nil {
		parked = fmt.Errorf("workflow workers did not park before shutdown: %w", parked)
	}
	return errors.Join(parked, w.hub.Shutdown(context.WithoutCancel(ctx)))
}

// Fetcher kinds, indexes of gate.parked.
const (
	orchestrations = iota
	activities
)

// gate passes every call through to the backend, except that once parking has
// begun it hands out nothing more: a fetch then waits for its cancellation,
// and counts as a parked poller. Fetches already in the backend when parking
// begins are interrupted, so that they park too.
type gate struct {
	backend.Backend

	mu      sync.Mutex
	parking bool
	parked  [2]int
	// fetchCtx is what each kind's fetches pass to the backend: the poller's
	// context (the same at every fetch), made cancellable by park. Made once
	// per kind, so a fetch allocates nothing.
	fetchCtx  [2]context.Context
	interrupt [2]context.CancelFunc
	changed   chan struct{} // closed when parked changes; nil until someone waits
}

func (g *gate) GetOrchestrationWorkItem(ctx context.Context) (*backend.OrchestrationWorkItem, error) {
	return fetch(g, ctx, orchestrations, g.Backend.GetOrchestrationWorkItem)
}

func (g *gate) GetActivityWorkItem(ctx context.Context) (*backend.ActivityWorkItem, error) {
	return fetch(g, ctx, activities, g.Backend.GetActivityWorkItem)
}

// fetch runs one poller's fetch through the gate.
func fetch[T any](g *gate, ctx context.Context, kind int, get func(context.Context) (T, error)) (T, error) {
	var zero T
	g.mu.Lock()
	if g.parking {
		return zero, g.parkLocked(ctx, kind)
	}
	if g.fetchCtx[kind] == nil {
		g.fetchCtx[kind], g.interrupt[kind] = context.WithCancel(ctx)
	}
	fctx := g.fetchCtx[kind]
	g.mu.Unlock()

	wi, err := get(fctx)
	if err == nil {
		return wi, nil
	}
	g.mu.Lock()
	if g.parking && ctx.Err() == nil {
		// No work, and parking began meanwhile (perhaps interrupting this
		// fetch): park rather than let the poller come round again.
		return zero, g.parkLocked(ctx, kind)
	}
	g.mu.Unlock()
	return wi, err
}

// parkLocked counts a parked poller, releases g.mu and waits for the poller's
// cancellation.
func (g *gate) parkLocked(ctx context.Context, kind int) error {
	g.parked[kind]++
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
	g.mu.Unlock()
	<-ctx.Done()
	return ctx.Err()
}

// park stops handing out work, interrupts the fetches in progress and waits
// until a poller of each kind has parked.
func (g *gate) park(ctx context.Context) error {
	g.mu.Lock()
	g.parking = true
	for _, interrupt := range g.interrupt {
		if interrupt != nil {
			interrupt()
		}
	}
	g.mu.Unlock()
	for {
		g.mu.Lock()
		if g.parked[orchestrations] > 0 && g.parked[activities] > 0 {
			g.mu.Unlock()
			return nil
		}
		if g.changed == nil {
			g.changed = make(chan struct{})
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
