package wfbackend

import (
	"context"

	"github.com/microsoft/durabletask-go/api"
)

// waiter is shared by the WaitForOrchestrationCompletion calls for one
// instance; ch is closed when the instance finishes or is removed.
type waiter struct {
	ch chan struct{}
	n  int // calls waiting; the last to give up removes the entry
}

// WaitForOrchestrationCompletion waits until the instance reaches a terminal
// status and returns its metadata. Unlike backend.TaskHubClient's method of the
// same name, which polls with a back-off starting at 100 ms, it is woken by
// the commit that completes the instance. It returns api.ErrInstanceNotFound
// if the instance does not exist (or is purged while waiting) and ctx.Err() if
// ctx ends first.
func (b *Backend) WaitForOrchestrationCompletion(ctx context.Context, iid api.InstanceID) (*api.OrchestrationMetadata, error) {
	id := string(iid)
	for {
		// Register before reading, so that a completion committed between the
		// read and the wait still wakes us.
		b.mu.Lock()
		if err := b.usableLocked(); err != nil {
			b.mu.Unlock()
			return nil, err
		}
		w := b.completion[id]
		if w == nil {
			w = &waiter{ch: make(chan struct{})}
			b.completion[id] = w
		}
		w.n++
		b.mu.Unlock()

		md, err := b.GetOrchestrationMetadata(ctx, iid)
		if err == nil && !md.IsComplete() {
			select {
			case <-w.ch:
				continue // the entry was removed when ch closed
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		b.mu.Lock()
		if w.n--; w.n == 0 && b.completion[id] == w {
			delete(b.completion, id)
		}
		b.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return md, nil
	}
}
