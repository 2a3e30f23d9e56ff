package wfbackend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
	"google.golang.org/protobuf/proto"
)

// isTerminal reports whether status is final: such an instance takes no more
// events and may be purged.
func isTerminal(status api.OrchestrationStatus) bool {
	switch status {
	case api.RUNTIME_STATUS_COMPLETED, api.RUNTIME_STATUS_FAILED,
		api.RUNTIME_STATUS_TERMINATED, api.RUNTIME_STATUS_CANCELED:
		return true
	}
	return false
}

// instanceStatus reads an instance's status inside the committer's
// transaction, so it sees earlier ops of the same batch.
func (tx *txn) instanceStatus(id string) (api.OrchestrationStatus, bool, error) {
	var s int32
	err := tx.b.w.selectStatus.QueryRow(id).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read status of %s: %w", id, err)
	}
	return api.OrchestrationStatus(s), true, nil
}

// target reports whether an instance exists and whether it still takes
// events (is not terminal). A cached history proves both without a query: the
// cache holds only instances that exist and have not finished, as of the last
// commit, and changed covers this transaction's ops.
func (tx *txn) target(id string) (exists, running bool, err error) {
	if !tx.changed[id] {
		b := tx.b
		b.mu.Lock()
		_, cached := b.cache.entries[id]
		b.mu.Unlock()
		if cached {
			return true, true, nil
		}
	}
	status, exists, err := tx.instanceStatus(id)
	return exists, exists && !isTerminal(status), err
}

// encodedEvent is an event with its protobuf encoding, made by the caller so
// that the committer, the serial part, does not spend its time encoding.
type encodedEvent struct {
	e   *backend.HistoryEvent
	buf []byte
}

func encode(e *backend.HistoryEvent) (encodedEvent, error) {
	buf, err := marshalEvent(e)
	return encodedEvent{e, buf}, err
}

// insertInbox writes an inbox row and records its delivery.
func (tx *txn) insertInbox(eff *effects, instanceID string, ev encodedEvent, dueAt int64) error {
	id := tx.allocID()
	if _, err := tx.b.w.insertInbox.Exec(instanceID, id, dueAt, ev.buf); err != nil {
		return fmt.Errorf("insert inbox event for %s: %w", instanceID, err)
	}
	eff.events = append(eff.events, newEvent{instanceID: instanceID, ev: inboxEvent{id: id, e: ev.e}, dueAt: dueAt})
	return nil
}

// deleteInstance deletes all durable state of an instance.
func (tx *txn) deleteInstance(eff *effects, id string) error {
	w := tx.b.w
	for _, s := range []*sql.Stmt{w.deleteInstance, w.deleteHistory, w.deleteInstInbox} {
		if _, err := s.Exec(id); err != nil {
			return fmt.Errorf("delete instance %s: %w", id, err)
		}
	}
	tx.markChanged(id)
	eff.resets = append(eff.resets, id)
	return nil
}

// createInstance inserts a new instance row and its ExecutionStarted event,
// unless the instance ID is taken; created reports which.
func (tx *txn) createInstance(eff *effects, ev encodedEvent) (created bool, err error) {
	e := ev.e
	es := e.GetExecutionStarted()
	id := es.GetOrchestrationInstance().GetInstanceId()
	var parent any
	if p := es.GetParentInstance().GetOrchestrationInstance().GetInstanceId(); p != "" {
		parent = p
	}
	var input any
	if es.Input != nil {
		input = es.Input.GetValue()
	}
	res, err := tx.b.w.insertInstance.Exec(id, es.GetName(), es.GetVersion().GetValue(),
		es.GetOrchestrationInstance().GetExecutionId().GetValue(), parent,
		int32(api.RUNTIME_STATUS_PENDING), e.GetTimestamp().AsTime().UnixNano(), tx.now.UnixNano(), input)
	if err != nil {
		return false, fmt.Errorf("insert instance %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, fmt.Errorf("insert instance %s: %w", id, err)
	} else if n == 0 {
		return false, nil
	}
	var due int64
	if st := es.GetScheduledStartTimestamp(); st != nil && st.AsTime().After(tx.now) {
		due = st.AsTime().UnixNano()
	}
	eff.created = append(eff.created, id)
	tx.markChanged(id)
	return true, tx.insertInbox(eff, id, ev, due)
}

func validateStartEvent(e *backend.HistoryEvent) error {
	switch {
	case e == nil:
		return errors.New("create orchestration instance: nil event")
	case e.GetTimestamp() == nil:
		return errors.New("create orchestration instance: event has no timestamp")
	case e.GetExecutionStarted() == nil:
		return errors.New("create orchestration instance: event is not ExecutionStarted")
	case e.GetExecutionStarted().GetOrchestrationInstance().GetInstanceId() == "":
		return errors.New("create orchestration instance: no instance ID")
	}
	return nil
}

// CreateOrchestrationInstance implements backend.Backend. If the instance ID
// is taken, the reuse policy decides, as in durabletask-go v0.5.0: with no
// policy, or when the existing instance's status is not among the policy's
// statuses, it returns api.ErrDuplicateInstance; IGNORE keeps the existing
// instance and returns nil; TERMINATE deletes the existing instance (whatever
// it was doing) and creates the new one.
func (b *Backend) CreateOrchestrationInstance(ctx context.Context, e *backend.HistoryEvent, opts ...backend.OrchestrationIdReusePolicyOptions) error {
	if err := b.usable(); err != nil {
		return err
	}
	if err := validateStartEvent(e); err != nil {
		return err
	}
	policy := &api.OrchestrationIdReusePolicy{}
	for _, opt := range opts {
		if err := opt(policy); err != nil {
			return fmt.Errorf("create orchestration instance: %w", err)
		}
	}
	id := e.GetExecutionStarted().GetOrchestrationInstance().GetInstanceId()
	ev, err := encode(e)
	if err != nil {
		return err
	}
	err = b.submit(ctx, &op{run: func(tx *txn, eff *effects) error {
		// Insert first: a new ID, the common case, costs one statement.
		if created, err := tx.createInstance(eff, ev); err != nil || created {
			return err
		}
		status, _, err := tx.instanceStatus(id)
		if err != nil {
			return err
		}
		if !slices.Contains(policy.GetOperationStatus(), status) {
			return reject(api.ErrDuplicateInstance)
		}
		switch policy.GetAction() {
		case api.REUSE_ID_ACTION_IGNORE:
			return reject(api.ErrIgnoreInstance)
		case api.REUSE_ID_ACTION_TERMINATE:
			if err := tx.deleteInstance(eff, id); err != nil {
				return err
			}
			if created, err := tx.createInstance(eff, ev); err != nil {
				return err
			} else if !created {
				return fmt.Errorf("create instance %s: still exists after delete", id)
			}
			return nil
		default:
			return reject(api.ErrDuplicateInstance)
		}
	}})
	if errors.Is(err, api.ErrIgnoreInstance) {
		b.log.Warn("instance exists; create request ignored by reuse policy", "instance", id)
		return nil
	}
	return err
}

// AddNewOrchestrationEvent implements backend.Backend. It returns
// api.ErrInstanceNotFound if the instance does not exist. Events for an
// instance that has already finished are discarded, as the durabletask client
// documents for raised events.
func (b *Backend) AddNewOrchestrationEvent(ctx context.Context, iid api.InstanceID, e *backend.HistoryEvent) error {
	if err := b.usable(); err != nil {
		return err
	}
	if e == nil {
		return errors.New("add orchestration event: nil event")
	}
	if e.GetTimestamp() == nil {
		return errors.New("add orchestration event: event has no timestamp")
	}
	id := string(iid)
	ev, err := encode(e)
	if err != nil {
		return err
	}
	return b.submit(ctx, &op{run: func(tx *txn, eff *effects) error {
		exists, running, err := tx.target(id)
		switch {
		case err != nil:
			return err
		case !exists:
			return reject(api.ErrInstanceNotFound)
		case !running:
			return nil
		}
		return tx.insertInbox(eff, id, ev, 0)
	}})
}

// GetOrchestrationWorkItem implements backend.Backend. It locks the next
// instance with visible events and hands out all of them. It blocks while
// there is none, or while the backend is stopped (see WithWorkItemWait); it
// returns ctx.Err() if ctx ends first, and backend.ErrNoWorkItems when the
// wait bound passes.
func (b *Backend) GetOrchestrationWorkItem(ctx context.Context) (*backend.OrchestrationWorkItem, error) {
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
		if !b.stopped {
			b.fireDueTimersLocked(b.now())
			if wi, history, ok := b.lockNextInstanceLocked(); ok {
				b.mu.Unlock()
				if history != nil {
					wi.State = backend.NewOrchestrationRuntimeState(wi.InstanceID, history)
				}
				return wi, nil
			}
		}
		if b.opts.wait == 0 {
			b.mu.Unlock()
			return nil, backend.ErrNoWorkItems
		}
		wake := b.orchSignal.wait()
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

// startShare is how often a first turn goes ahead of the instances already
// running: one in startShare turns handed out while both kinds wait.
const startShare = 8

// popReadyLocked returns the next instance to run. Instances that have started
// go first, so that under load the work in progress finishes rather than
// every accepted instance advancing a step at a time: latency stays that of
// one instance, and memory that of the instances in progress, while the rest
// wait to start. A share of turns still goes to new instances, so that a
// steady stream of running ones cannot starve them.
func (b *Backend) popReadyLocked() (*instance, bool) {
	if b.readyNew.len() > 0 && (b.ready.len() == 0 || b.newTurns >= startShare-1) {
		b.newTurns = 0
		return b.readyNew.pop()
	}
	b.newTurns++
	return b.ready.pop()
}

// lockNextInstanceLocked pops the next ready instance and locks it. history is
// its cached history, or nil if the worker must load it; a brand-new
// instance's history is known to be empty.
func (b *Backend) lockNextInstanceLocked() (*backend.OrchestrationWorkItem, []*backend.HistoryEvent, bool) {
	for {
		inst, ok := b.popReadyLocked()
		if !ok {
			return nil, nil, false
		}
		if inst.dead || !inst.queued {
			continue
		}
		inst.queued = false
		inst.locked = true
		inst.token = b.newToken()
		inst.inflight, inst.pending = inst.pending, nil
		events := make([]*backend.HistoryEvent, len(inst.inflight))
		for i, ev := range inst.inflight {
			events[i] = ev.e
		}
		wi := &backend.OrchestrationWorkItem{
			InstanceID: api.InstanceID(inst.id),
			NewEvents:  events,
			LockedBy:   inst.token,
			RetryCount: inst.retries,
		}
		history, cached := b.cache.get(inst.id)
		if cached && history == nil {
			history = []*backend.HistoryEvent{}
		}
		return wi, history, true
	}
}

// GetOrchestrationRuntimeState implements backend.Backend. It serves the
// history from the cache to the holder of the instance's lock when it can,
// and otherwise reads the database; the state of an unknown instance is
// empty. Anyone else reads the database: a turn's commit is visible there
// before the cache catches up, so the cache could show them an older state
// than the store (a terminated instance as running, to a purge).
func (b *Backend) GetOrchestrationRuntimeState(ctx context.Context, wi *backend.OrchestrationWorkItem) (*backend.OrchestrationRuntimeState, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	if wi == nil {
		return nil, errors.New("get orchestration runtime state: nil work item")
	}
	id := string(wi.InstanceID)
	b.mu.Lock()
	var history []*backend.HistoryEvent
	ok := false
	if b.lockedByLocked(id, wi.LockedBy) != nil {
		history, ok = b.cache.get(id)
	}
	b.mu.Unlock()
	if ok {
		return backend.NewOrchestrationRuntimeState(wi.InstanceID, history), nil
	}
	history, err := b.readHistory(ctx, id)
	if err != nil {
		return nil, err
	}
	state := backend.NewOrchestrationRuntimeState(wi.InstanceID, history)
	// Cache only for the lock holder: no turn of this instance can commit
	// meanwhile, so what was read is current. Never cache a finished
	// instance: the cache vouches for instances that take events.
	if !state.IsCompleted() && len(history) > 0 {
		b.mu.Lock()
		if b.lockedByLocked(id, wi.LockedBy) != nil {
			b.cache.put(id, history)
		}
		b.mu.Unlock()
	}
	return state, nil
}

// lockedByLocked returns instance id if token is the lock of its current work
// item, and nil otherwise. A locked instance's token is never empty. b.mu must
// be held.
func (b *Backend) lockedByLocked(id, token string) *instance {
	if inst := b.instances[id]; inst != nil && inst.locked && inst.token == token {
		return inst
	}
	return nil
}

func (b *Backend) readHistory(ctx context.Context, id string) ([]*backend.HistoryEvent, error) {
	rows, err := b.r.history.QueryContext(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", id, err)
	}
	defer rows.Close()
	var history []*backend.HistoryEvent
	for rows.Next() {
		var chunk []byte
		if err := rows.Scan(&chunk); err != nil {
			return nil, fmt.Errorf("read history of %s: %w", id, err)
		}
		if history, err = decodeChunk(history, chunk); err != nil {
			return nil, fmt.Errorf("read history of %s: %w", id, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history of %s: %w", id, err)
	}
	return history, nil
}

// History returns an instance's stored history events, oldest first (after a
// continue-as-new, those of the current generation). It returns
// api.ErrInstanceNotFound if the instance does not exist. It is for
// inspection (APIs, debugging); the returned events must not be modified.
func (b *Backend) History(ctx context.Context, iid api.InstanceID) ([]*backend.HistoryEvent, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	// Metadata first: an instance without history yet (pending) exists, a
	// missing one has neither.
	if _, err := b.GetOrchestrationMetadata(ctx, iid); err != nil {
		return nil, err
	}
	return b.readHistory(ctx, string(iid))
}

// GetOrchestrationMetadata implements backend.Backend. It returns
// api.ErrInstanceNotFound if the instance does not exist.
func (b *Backend) GetOrchestrationMetadata(ctx context.Context, iid api.InstanceID) (*api.OrchestrationMetadata, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	var (
		name                        string
		status                      int32
		created, updated            int64
		input, output, customStatus sql.NullString
		failure                     []byte
	)
	err := b.r.metadata.QueryRowContext(ctx, string(iid)).Scan(&name, &status, &created, &updated,
		&input, &output, &customStatus, &failure)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.ErrInstanceNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read metadata of %s: %w", iid, err)
	}
	var fd *backend.TaskFailureDetails
	if len(failure) > 0 {
		fd = new(backend.TaskFailureDetails)
		if err := proto.Unmarshal(failure, fd); err != nil {
			return nil, fmt.Errorf("read metadata of %s: failure details: %w", iid, err)
		}
	}
	return api.NewOrchestrationMetadata(iid, name, api.OrchestrationStatus(status),
		time.Unix(0, created).UTC(), time.Unix(0, updated).UTC(),
		input.String, output.String, customStatus.String, fd), nil
}

// CompleteOrchestrationWorkItem implements backend.Backend. It commits the
// turn atomically: new history, instance status, the outbox (activities,
// timers, messages to other instances, sub-orchestrations) and the removal of
// the consumed inbox events. It returns backend.ErrWorkItemLockLost if the
// work item is no longer locked by wi.LockedBy (abandoned, or the instance was
// purged or replaced meanwhile).
func (b *Backend) CompleteOrchestrationWorkItem(ctx context.Context, wi *backend.OrchestrationWorkItem) error {
	if err := b.usable(); err != nil {
		return err
	}
	if wi == nil || wi.State == nil {
		return errors.New("complete orchestration work item: no runtime state")
	}
	id := string(wi.InstanceID)
	b.mu.Lock()
	inst := b.lockedByLocked(id, wi.LockedBy)
	if inst == nil {
		b.mu.Unlock()
		return backend.ErrWorkItemLockLost
	}
	consumed := slices.Clone(inst.inflight)
	b.mu.Unlock()

	// Encode outside the committer, in the worker's goroutine: the committer is
	// the serial part, so CPU spent there limits everyone.
	state := wi.State
	newEvents := state.NewEvents()
	var chunk []byte
	if len(newEvents) > 0 {
		var err error
		if chunk, err = appendChunk(nil, newEvents); err != nil {
			return err
		}
	}
	terminal := state.IsCompleted()
	var history []*backend.HistoryEvent
	if !terminal {
		old := state.OldEvents()
		if state.ContinuedAsNew() {
			old = nil
		}
		history = make([]*backend.HistoryEvent, 0, len(old)+len(newEvents))
		history = append(append(history, old...), newEvents...)
	}
	upd, err := instanceUpdate(state)
	if err != nil {
		return err
	}
	tasks := state.PendingTasks()
	var timers []encodedEvent
	if !terminal {
		// A finished instance's timers would only be discarded.
		if timers, err = encodeAll(state.PendingTimers()); err != nil {
			return err
		}
	}
	msgs := make([]encodedMessage, len(state.PendingMessages()))
	for i, m := range state.PendingMessages() {
		msgs[i].target = m.TargetInstanceID
		if msgs[i].ev, err = encode(m.HistoryEvent); err != nil {
			return err
		}
	}

	return b.submit(ctx, &op{run: func(tx *txn, eff *effects) error {
		b.mu.Lock()
		held := b.lockedByLocked(id, wi.LockedBy) != nil
		b.mu.Unlock()
		if !held || tx.changed[id] {
			return reject(backend.ErrWorkItemLockLost)
		}
		w := b.w
		if len(newEvents) > 0 && upd.unchanged {
			// Nothing in the row changes but the time: the history chunk
			// carries the turn. The lock proves the instance exists.
			if _, err := w.insertHistory.Exec(id, len(state.OldEvents()), chunk); err != nil {
				return fmt.Errorf("append history of %s: %w", id, err)
			}
		} else if len(newEvents) > 0 {
			res, err := w.updateInstance.Exec(id, upd.status, tx.now.UnixNano(), upd.customStatus,
				upd.setInput, upd.input, upd.created, upd.completedAt(tx.now), upd.output, upd.failure)
			if err != nil {
				return fmt.Errorf("update instance %s: %w", id, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("update instance %s: %w", id, err)
			} else if n == 0 {
				// Events for an instance without a row: nothing to record.
				return reject(backend.ErrWorkItemLockLost)
			}
			seq := len(state.OldEvents())
			if state.ContinuedAsNew() {
				seq = 0
				if _, err := w.deleteHistory.Exec(id); err != nil {
					return fmt.Errorf("reset history of %s: %w", id, err)
				}
			}
			if _, err := w.insertHistory.Exec(id, seq, chunk); err != nil {
				return fmt.Errorf("append history of %s: %w", id, err)
			}
		}
		if terminal {
			// A finished instance takes no more events: drop all of its
			// inbox, including timers that have not fired. Results of
			// activities it no longer waits for are dropped as they come.
			if _, err := w.deleteInstInbox.Exec(id); err != nil {
				return fmt.Errorf("clear inbox of %s: %w", id, err)
			}
		} else {
			for _, ev := range consumed {
				if ev.activity != 0 {
					// A result held in memory: its TaskCompleted event,
					// in this turn's history, is its durable record.
					continue
				}
				if _, err := w.deleteInbox.Exec(id, ev.id); err != nil {
					return fmt.Errorf("delete inbox event of %s: %w", id, err)
				}
			}
		}
		for _, t := range tasks {
			// Its TaskScheduled event in the history chunk written above is
			// its durable record: loadState finds the activities without a
			// result there.
			eff.activities = append(eff.activities, &activity{id: tx.allocID(), instanceID: id, e: t})
		}
		for _, t := range timers {
			if err := tx.insertInbox(eff, id, t, t.e.GetTimerFired().GetFireAt().AsTime().UnixNano()); err != nil {
				return err
			}
		}
		if terminal {
			tx.markChanged(id)
		}
		for _, m := range msgs {
			if err := b.sendMessage(tx, eff, id, m); err != nil {
				return err
			}
		}
		eff.turn = &turnEffect{instanceID: id, token: wi.LockedBy, history: history, terminal: terminal}
		return nil
	}})
}

// encodedMessage is an orchestration's message to another instance, encoded.
type encodedMessage struct {
	target string
	ev     encodedEvent
}

func encodeAll(events []*backend.HistoryEvent) ([]encodedEvent, error) {
	out := make([]encodedEvent, len(events))
	for i, e := range events {
		var err error
		if out[i], err = encode(e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sendMessage delivers an orchestration's message to another instance:
// creates a sub-orchestration, or queues an event for a running instance.
// Messages that cannot be delivered are logged and dropped rather than failing
// the sender's turn, which would otherwise be retried forever.
func (b *Backend) sendMessage(tx *txn, eff *effects, from string, m encodedMessage) error {
	if m.ev.e.GetExecutionStarted() != nil {
		if err := validateStartEvent(m.ev.e); err != nil {
			b.log.Warn("invalid sub-orchestration start event dropped", "instance", from, "err", err)
			return nil
		}
		created, err := tx.createInstance(eff, m.ev)
		if err == nil && !created {
			b.log.Warn("sub-orchestration instance exists; create request dropped",
				"instance", from, "sub_instance", m.target)
		}
		return err
	}
	_, running, err := tx.target(m.target)
	if err != nil {
		return err
	}
	if !running {
		b.log.Debug("message to missing or finished instance dropped", "instance", from, "target", m.target)
		return nil
	}
	return tx.insertInbox(eff, m.target, m.ev, 0)
}

// instanceRow holds the instance columns a turn sets, computed from the state
// outside the committer.
type instanceRow struct {
	// unchanged is set for a turn of a running instance that changes no
	// column but updated_at: such a turn leaves the row alone, so updated_at
	// is the time of the last change of status, custom status or output.
	unchanged    bool
	status       int32
	customStatus any
	setInput     bool
	input        any
	created      any
	terminal     bool
	output       any
	failure      any
}

func (u *instanceRow) completedAt(now time.Time) any {
	if !u.terminal {
		return nil
	}
	return now.UnixNano()
}

func instanceUpdate(state *backend.OrchestrationRuntimeState) (*instanceRow, error) {
	u := &instanceRow{status: int32(state.RuntimeStatus())}
	if cs := state.CustomStatus; cs != nil {
		u.customStatus = cs.GetValue()
	}
	u.unchanged = state.RuntimeStatus() == api.RUNTIME_STATUS_RUNNING && u.customStatus == nil &&
		len(state.OldEvents()) > 0 && !state.ContinuedAsNew()
	for _, e := range state.NewEvents() {
		if e.GetExecutionResumed() != nil {
			u.unchanged = false // the row says SUSPENDED
		}
		if es := e.GetExecutionStarted(); es != nil {
			u.unchanged = false
			// A first turn or a continue-as-new: the start event carries the
			// (new) input and creation time.
			u.setInput = true
			if es.Input != nil {
				u.input = es.Input.GetValue()
			}
			u.created = e.GetTimestamp().AsTime().UnixNano()
			break
		}
	}
	if state.IsCompleted() {
		u.terminal = true
		if out, err := state.Output(); err == nil {
			u.output = out
		}
		if fd, err := state.FailureDetails(); err == nil {
			buf, err := proto.Marshal(fd)
			if err != nil {
				return nil, fmt.Errorf("marshal failure details: %w", err)
			}
			u.failure = buf
		}
	}
	return u, nil
}

// AbandonOrchestrationWorkItem implements backend.Backend. The lock is released
// at once and the events go back to the instance; after repeated abandons the
// instance waits wi.GetAbandonDelay() before it is handed out again, so a
// poisoned turn does not spin. It returns backend.ErrWorkItemLockLost if wi no
// longer holds the lock.
func (b *Backend) AbandonOrchestrationWorkItem(ctx context.Context, wi *backend.OrchestrationWorkItem) error {
	if err := b.usable(); err != nil {
		return err
	}
	if wi == nil {
		return errors.New("abandon orchestration work item: nil work item")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	inst := b.lockedByLocked(string(wi.InstanceID), wi.LockedBy)
	if inst == nil {
		return backend.ErrWorkItemLockLost
	}
	inst.pending = append(inst.inflight, inst.pending...)
	inst.inflight = nil
	inst.locked, inst.token = false, ""
	delay := wi.GetAbandonDelay()
	inst.retries++
	// The worker may have changed the cached history's state object, never
	// the cached slice itself; but the turn failed, so start it from the
	// database next time to rule out anything half-applied.
	b.cache.remove(inst.id)
	if delay > 0 {
		inst.delayed = true
		time.AfterFunc(delay, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			inst.delayed = false
			b.maybeReadyLocked(inst)
			b.maybeDropLocked(inst)
		})
		return nil
	}
	b.maybeReadyLocked(inst)
	return nil
}

// PurgeOrchestrationState implements backend.Backend. It returns
// api.ErrInstanceNotFound if the instance does not exist and
// api.ErrNotCompleted if it has not finished.
func (b *Backend) PurgeOrchestrationState(ctx context.Context, iid api.InstanceID) error {
	if err := b.usable(); err != nil {
		return err
	}
	id := string(iid)
	return b.submit(ctx, &op{run: func(tx *txn, eff *effects) error {
		status, exists, err := tx.instanceStatus(id)
		switch {
		case err != nil:
			return err
		case !exists:
			return reject(api.ErrInstanceNotFound)
		case !isTerminal(status):
			return reject(api.ErrNotCompleted)
		}
		return tx.deleteInstance(eff, id)
	}})
}
