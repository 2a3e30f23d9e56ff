package wfbackend

import (
	"context"
	"errors"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
)

// GetActivityWorkItem implements backend.Backend. It hands out the oldest
// scheduled activity, blocking while there is none or while the backend is
// stopped (see WithWorkItemWait); it returns ctx.Err() if ctx ends first, and
// backend.ErrNoWorkItems when the wait bound passes.
func (b *Backend) GetActivityWorkItem(ctx context.Context) (*backend.ActivityWorkItem, error) {
	var deadline <-chan time.Time
	for {
		// ctx first: v0.5.0's worker stops polling only on ctx's error.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b.mu.Lock()
		if err := b.usableLocked(); err != nil {
			b.mu.Unlock()
			return nil, err
		}
		if a, ok := b.actQueue.pop(); ok && !b.stopped {
			a.token = b.newToken()
			b.activeActs[a.id] = a
			b.mu.Unlock()
			return &backend.ActivityWorkItem{
				SequenceNumber: a.id,
				InstanceID:     api.InstanceID(a.instanceID),
				NewEvent:       a.e,
				LockedBy:       a.token,
			}, nil
		} else if ok {
			b.actQueue.pushFront(a)
		}
		if b.opts.wait == 0 {
			b.mu.Unlock()
			return nil, backend.ErrNoWorkItems
		}
		wake := b.actSignal.wait()
		b.mu.Unlock()
		if b.opts.wait > 0 && deadline == nil {
			t := time.NewTimer(b.opts.wait)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			return nil, backend.ErrNoWorkItems
		}
	}
}

// heldActivity returns the activity wi refers to if wi still holds its lock.
func (b *Backend) heldActivity(wi *backend.ActivityWorkItem) (*activity, bool) {
	a := b.activeActs[wi.SequenceNumber]
	if a == nil || a.token != wi.LockedBy || a.instanceID != string(wi.InstanceID) {
		return nil, false
	}
	return a, true
}

// CompleteActivityWorkItem implements backend.Backend: it hands the result
// (wi.Result) to the orchestration. It returns backend.ErrWorkItemLockLost if
// wi no longer holds the activity (it was abandoned). A result for an instance
// that has finished, or was purged or replaced, meanwhile is dropped.
//
// While the instance is known to be running (its history has stayed cached
// since the turn that scheduled the activity), the result is kept in memory
// only, until the turn that consumes it writes it to the history. That saves
// a commit per activity and loses nothing: after a crash the history holds
// the activity's TaskScheduled event and no result, so the activity runs
// again (see loadState), as it would had the crash come just before this
// call. Otherwise the result is committed to the inbox.
func (b *Backend) CompleteActivityWorkItem(ctx context.Context, wi *backend.ActivityWorkItem) error {
	if err := b.usable(); err != nil {
		return err
	}
	if wi == nil || wi.Result == nil {
		return errors.New("complete activity work item: no result")
	}
	id := string(wi.InstanceID)
	b.mu.Lock()
	a, ok := b.heldActivity(wi)
	if !ok {
		b.mu.Unlock()
		return backend.ErrWorkItemLockLost
	}
	if e := b.cache.entry(id); e != nil && e == a.gen {
		// The cache holds only instances that exist and take events, as of
		// the last commit, and its entry is the one of the instance that
		// scheduled the activity, not of one that replaced it. Memory
		// changes only under b.mu, so this holds while the result is
		// delivered below.
		delete(b.activeActs, a.id)
		b.addPendingLocked(b.instanceLocked(id), inboxEvent{activity: a.id, e: wi.Result})
		b.mu.Unlock()
		return nil
	}
	incarnation := a.incarnation
	b.mu.Unlock()
	result, err := encode(wi.Result)
	if err != nil {
		return err
	}
	return b.submit(ctx, &op{run: func(tx *txn, eff *effects) error {
		eff.activityDone = wi.SequenceNumber
		// The result is for the instance that scheduled the activity, if it
		// still runs: not if an earlier op of this transaction deleted or
		// finished it, and not if it was purged or replaced since (its
		// incarnation changed; memory holds every committed change).
		if tx.changed[id] {
			return nil
		}
		b.mu.Lock()
		same := b.incarnations[id] == incarnation
		b.mu.Unlock()
		if !same {
			return nil
		}
		_, running, err := tx.target(id)
		if err != nil || !running {
			return err
		}
		return tx.insertInbox(eff, id, result, 0)
	}})
}

// AbandonActivityWorkItem implements backend.Backend: the activity goes back to
// the head of the queue at once. It returns backend.ErrWorkItemLockLost if wi
// no longer holds the activity.
func (b *Backend) AbandonActivityWorkItem(ctx context.Context, wi *backend.ActivityWorkItem) error {
	if err := b.usable(); err != nil {
		return err
	}
	if wi == nil {
		return errors.New("abandon activity work item: nil work item")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.heldActivity(wi)
	if !ok {
		return backend.ErrWorkItemLockLost
	}
	delete(b.activeActs, a.id)
	a.token = ""
	b.actQueue.pushFront(a)
	b.actSignal.broadcast()
	return nil
}
