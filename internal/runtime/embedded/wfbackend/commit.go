package wfbackend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/microsoft/durabletask-go/backend"
)

// op is one change submitted to the committer: CreateOrchestrationInstance,
// AddNewOrchestrationEvent, CompleteOrchestrationWorkItem,
// CompleteActivityWorkItem, PurgeOrchestrationState or DeleteTaskHub.
type op struct {
	// run writes the change inside the committer's open transaction and
	// records in eff what memory must do once it commits. It may read memory
	// but must not change it (it may run twice: in a batch that fails, then
	// alone), and must not write anything before returning a rejection.
	run  func(tx *txn, eff *effects) error
	eff  effects
	err  error
	done chan struct{}
}

// rejection is an outcome of run that is the caller's answer rather than a
// failure of the transaction (for example ErrDuplicateInstance). run returns
// it before writing anything, so the batch goes on.
type rejection struct{ err error }

func (r rejection) Error() string { return r.err.Error() }

func reject(err error) error { return rejection{err} }

// effects are the in-memory consequences of a committed op, applied in the
// order recorded here (see applyEffectsLocked).
type effects struct {
	// resets lists instances whose durable state the op deleted.
	resets []string
	// created lists instances the op created: their (empty) history is known,
	// so their first turn needs no read.
	created []string
	// turn is set by CompleteOrchestrationWorkItem.
	turn *turnEffect
	// activityDone is the id of a completed activity.
	activityDone int64
	// events are inbox rows the op wrote.
	events []newEvent
	// activities are the activities the op scheduled: their TaskScheduled
	// events are in the history it wrote.
	activities []*activity
	// hubDeleted is set by DeleteTaskHub.
	hubDeleted bool
}

type newEvent struct {
	instanceID string
	ev         inboxEvent
	dueAt      int64
}

type turnEffect struct {
	instanceID string
	token      string
	history    []*backend.HistoryEvent // the instance's history after the turn
	terminal   bool                    // the turn completed the orchestration
}

// txn is the state of one transaction as ops see it.
type txn struct {
	b   *Backend
	now time.Time
	// changed marks instances deleted (purged, replaced), created or finished
	// by an earlier op of this transaction. Memory does not reflect those
	// changes until the commit, so later ops must not trust it for these
	// instances: a lock on a deleted one is lost, whether one takes events
	// must be read from the database, and an activity result is not theirs.
	changed map[string]bool
}

func (t *txn) markChanged(id string) {
	if t.changed == nil {
		t.changed = make(map[string]bool)
	}
	t.changed[id] = true
}

// allocID returns a fresh inbox row or activity id. Only the committer calls it.
func (t *txn) allocID() int64 {
	t.b.nextID++
	return t.b.nextID
}

// submit hands an op to the committer and waits until it is durable (or
// rejected or failed). Once the op is queued, submit waits for it regardless
// of ctx: returning early would let the caller act (for example abandon a
// work item) while the change may still commit.
func (b *Backend) submit(ctx context.Context, o *op) error {
	o.done = make(chan struct{})
	b.closeMu.RLock()
	if b.closed {
		b.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case b.ops <- o:
	default:
		// The queue is full: the committer is behind. Wait, but let the
		// caller give up, since nothing has been queued yet.
		select {
		case b.ops <- o:
		case <-ctx.Done():
			b.closeMu.RUnlock()
			return ctx.Err()
		}
	}
	b.closeMu.RUnlock()
	<-o.done
	return o.err
}

// runCommitter is the single writer. It takes every op waiting at the moment
// and commits them in one transaction (group commit): while one fsync runs,
// the next batch gathers, so throughput grows with load while a lone op is
// committed at once, without waiting for company.
func (b *Backend) runCommitter() {
	defer close(b.committerDone)
	batch := make([]*op, 0, b.opts.maxBatch)
	for {
		o, ok := <-b.ops
		if !ok {
			return
		}
		batch = append(batch[:0], o)
	gather:
		for len(batch) < b.opts.maxBatch {
			select {
			case o, ok := <-b.ops:
				if !ok {
					break gather
				}
				batch = append(batch, o)
			default:
				break gather
			}
		}
		b.commitBatch(batch)
		clear(batch)
	}
}

// commitBatch commits ops in one transaction. If that fails, it commits them
// one by one, so that one bad change fails alone.
func (b *Backend) commitBatch(batch []*op) {
	tx := &txn{b: b, now: b.now()}
	err := b.runTx(tx, batch)
	if err == nil {
		b.mu.Lock()
		for _, o := range batch {
			if o.err == nil {
				b.applyEffectsLocked(&o.eff, tx.now)
			}
		}
		b.mu.Unlock()
		// Counted before the callers return, so that what they read in
		// Stats includes their own commit.
		b.batches.Add(1)
		b.committed.Add(int64(len(batch)))
		for _, o := range batch {
			close(o.done)
		}
		return
	}
	if len(batch) == 1 {
		batch[0].err = fmt.Errorf("commit workflow change: %w", err)
		close(batch[0].done)
		return
	}
	b.log.Warn("group commit failed; committing its changes one by one", "changes", len(batch), "err", err)
	for _, o := range batch {
		tx := &txn{b: b, now: b.now()}
		if err := b.runTx(tx, []*op{o}); err != nil {
			o.err = fmt.Errorf("commit workflow change: %w", err)
		} else if o.err == nil {
			b.mu.Lock()
			b.applyEffectsLocked(&o.eff, tx.now)
			b.mu.Unlock()
		}
		close(o.done)
	}
}

// runTx runs ops in one transaction. Rejections are recorded in each op's
// err; any other error rolls the whole transaction back and is returned.
func (b *Backend) runTx(tx *txn, ops []*op) error {
	if _, err := b.w.begin.Exec(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	for _, o := range ops {
		o.eff = effects{}
		o.err = nil
		if err := o.run(tx, &o.eff); err != nil {
			var r rejection
			if errors.As(err, &r) {
				o.err = r.err
				o.eff = effects{}
				continue
			}
			b.rollback()
			return err
		}
	}
	if _, err := b.w.commit.Exec(); err != nil {
		b.rollback()
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (b *Backend) rollback() {
	// SQLite may have rolled back already (for example on SQLITE_FULL); the
	// error then says so and is of no interest.
	_, _ = b.w.rollback.Exec()
}

// applyEffectsLocked mirrors a committed op in memory.
func (b *Backend) applyEffectsLocked(eff *effects, now time.Time) {
	if eff.hubDeleted {
		b.resetAllLocked()
		b.hubReady = false
		return
	}
	for _, id := range eff.resets {
		b.resetInstanceLocked(id)
		b.notifyCompletionLocked(id)
	}
	for _, id := range eff.created {
		b.cache.put(id, nil)
		b.lastIncarnation++
		b.incarnations[id] = b.lastIncarnation
	}
	var turnInst *instance
	if t := eff.turn; t != nil {
		if inst := b.lockedByLocked(t.instanceID, t.token); inst != nil {
			inst.locked, inst.token, inst.inflight, inst.retries = false, "", nil, 0
			turnInst = inst
			if t.terminal {
				b.dropInboxLocked(inst)
			}
		}
		if t.terminal {
			b.cache.remove(t.instanceID)
			delete(b.incarnations, t.instanceID)
			b.notifyCompletionLocked(t.instanceID)
		} else {
			b.cache.put(t.instanceID, t.history)
		}
	}
	if eff.activityDone != 0 {
		delete(b.activeActs, eff.activityDone)
	}
	nowNano := now.UnixNano()
	for _, ne := range eff.events {
		b.deliverLocked(ne.instanceID, ne.ev, ne.dueAt, nowNano)
	}
	if len(eff.activities) > 0 {
		for _, a := range eff.activities {
			a.gen = b.cache.entry(a.instanceID)
			a.incarnation = b.incarnations[a.instanceID]
			b.actQueue.push(a)
		}
		b.actSignal.broadcast()
	}
	if turnInst != nil {
		b.maybeReadyLocked(turnInst)
		b.maybeDropLocked(turnInst)
	}
}

// resetAllLocked forgets all in-memory state (DeleteTaskHub).
func (b *Backend) resetAllLocked() {
	for id, inst := range b.instances {
		inst.dead = true
		delete(b.instances, id)
	}
	b.ready = fifo[*instance]{}
	b.readyNew = fifo[*instance]{}
	b.actQueue = fifo[*activity]{}
	clear(b.activeActs)
	clear(b.incarnations)
	for _, t := range b.timers {
		t.cancelled = true
	}
	b.timers = nil
	b.cache.clear()
	for id, w := range b.completion {
		close(w.ch)
		delete(b.completion, id)
	}
}
