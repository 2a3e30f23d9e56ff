package wfbackend

import (
	"container/heap"
	"container/list"
	"time"

	"github.com/microsoft/durabletask-go/backend"
)

// This file holds the in-memory mirror of the durable queues. Everything here
// is guarded by Backend.mu. It changes only after the database change that it
// mirrors has committed (committer effects), or for locks, which are never
// stored.

// inboxEvent is an event waiting in an instance's inbox, with the row the turn
// that consumes it deletes (id), or, for an activity result held only in
// memory (see CompleteActivityWorkItem), the activity it is the result of
// (activity, with id 0): nothing to delete.
type inboxEvent struct {
	id       int64
	activity int64
	e        *backend.HistoryEvent
}

// instance is the in-memory dispatch state of an orchestration instance. A
// record exists only while the instance has something pending (inbox events,
// timers) or is locked; waiting instances cost no memory.
type instance struct {
	id       string
	pending  []inboxEvent // visible events not yet handed to a worker
	inflight []inboxEvent // events of the work item currently locked
	timers   []*timerItem // inbox events not yet due

	locked  bool
	token   string // LockedBy of the current work item
	queued  bool   // in Backend.ready
	delayed bool   // abandoned with back-off; requeued by a timer
	// startDue is set while the instance's ExecutionStarted is a future timer
	// (a delayed start): events raised before the start wait with it.
	startDue bool
	dead     bool  // removed (purged or replaced); stale references skip it
	retries  int32 // consecutive abandons, for the abandon back-off
}

// activity is a scheduled activity task.
type activity struct {
	id         int64
	instanceID string
	e          *backend.HistoryEvent
	token      string // LockedBy while handed out
	// gen is the instance's cache entry when the turn that scheduled the
	// activity committed, or nil. Finding the same entry in the cache when
	// the activity completes proves the instance is the one that scheduled
	// it, and that it still runs (see CompleteActivityWorkItem).
	gen *cacheEntry
	// incarnation is the instance's incarnation when the activity was
	// scheduled (see Backend.incarnations).
	incarnation uint64
}

// timerItem is an inbox event that becomes visible at due.
type timerItem struct {
	due        int64 // Unix nanoseconds
	instanceID string
	ev         inboxEvent
	index      int
	cancelled  bool
}

// timerHeap orders timers by due time (container/heap).
type timerHeap []*timerItem

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].ev.id < h[j].ev.id
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timerItem)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

// fifo is a slice-backed queue; pushFront serves abandoned work, which goes
// back to the head so that it is retried first.
type fifo[T any] struct {
	items []T
	head  int
}

func (q *fifo[T]) len() int { return len(q.items) - q.head }

func (q *fifo[T]) push(v T) { q.items = append(q.items, v) }

func (q *fifo[T]) pushFront(v T) {
	if q.head > 0 {
		q.head--
		q.items[q.head] = v
		return
	}
	q.items = append(q.items, v)
	copy(q.items[1:], q.items)
	q.items[0] = v
}

func (q *fifo[T]) pop() (T, bool) {
	var zero T
	if q.head == len(q.items) {
		return zero, false
	}
	v := q.items[q.head]
	q.items[q.head] = zero
	q.head++
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head >= 1024 && q.head*2 >= len(q.items):
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return v, true
}

// signal wakes goroutines blocked waiting for work. A closed channel is a
// broadcast, so every waiter rechecks; the channel is allocated only when
// someone waits, so enqueueing with nobody waiting costs nothing.
type signal struct {
	ch chan struct{}
}

func (s *signal) wait() <-chan struct{} {
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) broadcast() {
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// historyCache keeps the history of recently run instances so that a turn does
// not read (and decode) the database. Entries are immutable slices, replaced
// whole after each committed turn; least recently used entries are evicted
// beyond the size limit.
type historyCache struct {
	limit   int
	entries map[string]*list.Element
	lru     list.List // of *cacheEntry, most recent at front
}

type cacheEntry struct {
	id     string
	events []*backend.HistoryEvent
}

func newHistoryCache(limit int) *historyCache {
	return &historyCache{limit: limit, entries: make(map[string]*list.Element)}
}

func (c *historyCache) get(id string) ([]*backend.HistoryEvent, bool) {
	el, ok := c.entries[id]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cacheEntry).events, true
}

// put sets id's history. An entry already there is updated in place, so it
// keeps its identity for as long as the instance stays cached.
func (c *historyCache) put(id string, events []*backend.HistoryEvent) {
	if c.limit <= 0 {
		return
	}
	if el, ok := c.entries[id]; ok {
		el.Value.(*cacheEntry).events = events
		c.lru.MoveToFront(el)
		return
	}
	c.entries[id] = c.lru.PushFront(&cacheEntry{id: id, events: events})
	for c.lru.Len() > c.limit {
		el := c.lru.Back()
		c.lru.Remove(el)
		delete(c.entries, el.Value.(*cacheEntry).id)
	}
}

// entry returns id's entry, or nil, without counting as a use.
func (c *historyCache) entry(id string) *cacheEntry {
	if el, ok := c.entries[id]; ok {
		return el.Value.(*cacheEntry)
	}
	return nil
}

func (c *historyCache) remove(id string) {
	if el, ok := c.entries[id]; ok {
		c.lru.Remove(el)
		delete(c.entries, id)
	}
}

func (c *historyCache) clear() {
	c.entries = make(map[string]*list.Element)
	c.lru.Init()
}

// instanceLocked returns the record for id, creating it.
func (b *Backend) instanceLocked(id string) *instance {
	inst := b.instances[id]
	if inst == nil {
		inst = &instance{id: id}
		b.instances[id] = inst
	}
	return inst
}

// deliverLocked routes a committed inbox event: into the instance's pending
// events if it is due, into the timer heap if not.
func (b *Backend) deliverLocked(instanceID string, ev inboxEvent, dueAt, now int64) {
	inst := b.instanceLocked(instanceID)
	if dueAt > now {
		t := &timerItem{due: dueAt, instanceID: instanceID, ev: ev}
		heap.Push(&b.timers, t)
		inst.timers = append(inst.timers, t)
		if ev.e.GetExecutionStarted() != nil {
			inst.startDue = true
		}
		if t.index == 0 {
			// New earliest timer: the timer goroutine must re-arm.
			select {
			case b.timerKick <- struct{}{}:
			default:
			}
		}
		return
	}
	b.addPendingLocked(inst, ev)
}

// addPendingLocked makes an event visible to the instance's next turn.
func (b *Backend) addPendingLocked(inst *instance, ev inboxEvent) {
	if ev.e.GetExecutionStarted() != nil {
		// ExecutionStarted leads the turn even when events raised before a
		// delayed start were already waiting.
		inst.startDue = false
		inst.pending = append(inst.pending, inboxEvent{})
		copy(inst.pending[1:], inst.pending)
		inst.pending[0] = ev
	} else {
		inst.pending = append(inst.pending, ev)
	}
	b.maybeReadyLocked(inst)
}

// maybeReadyLocked queues the instance for a worker if it has visible work and
// nothing holds it back.
func (b *Backend) maybeReadyLocked(inst *instance) {
	if inst.queued || inst.locked || inst.delayed || inst.startDue || inst.dead || len(inst.pending) == 0 {
		return
	}
	inst.queued = true
	if inst.pending[0].e.GetExecutionStarted() != nil {
		b.readyNew.push(inst)
	} else {
		b.ready.push(inst)
	}
	b.orchSignal.broadcast()
}

// maybeDropLocked forgets an instance record that has nothing left to track.
func (b *Backend) maybeDropLocked(inst *instance) {
	if inst.locked || inst.queued || inst.delayed || len(inst.pending) > 0 ||
		len(inst.inflight) > 0 || len(inst.timers) > 0 {
		return
	}
	if b.instances[inst.id] == inst {
		delete(b.instances, inst.id)
	}
}

// fireDueTimersLocked moves timers that are due into their instances' pending
// events. Get*WorkItem calls it too, so a due timer is never missed because
// the timer goroutine has not run yet.
func (b *Backend) fireDueTimersLocked(now time.Time) {
	n := now.UnixNano()
	for len(b.timers) > 0 && b.timers[0].due <= n {
		t := heap.Pop(&b.timers).(*timerItem)
		if t.cancelled {
			continue
		}
		inst := b.instances[t.instanceID]
		if inst == nil {
			continue // not reachable: records with timers are kept
		}
		for i, it := range inst.timers {
			if it == t {
				inst.timers = append(inst.timers[:i], inst.timers[i+1:]...)
				break
			}
		}
		b.addPendingLocked(inst, t.ev)
	}
}

// nextTimerLocked reports when the earliest live timer is due.
func (b *Backend) nextTimerLocked() (time.Time, bool) {
	for len(b.timers) > 0 {
		if t := b.timers[0]; !t.cancelled {
			return time.Unix(0, t.due), true
		}
		heap.Pop(&b.timers)
	}
	return time.Time{}, false
}

// resetInstanceLocked forgets everything in memory about an instance whose
// durable state was deleted (purge, or replacement by the reuse policy). A
// worker holding its lock will find the lock lost.
func (b *Backend) resetInstanceLocked(id string) {
	if inst := b.instances[id]; inst != nil {
		inst.dead = true
		for _, t := range inst.timers {
			t.cancelled = true
		}
		delete(b.instances, id)
	}
	b.cache.remove(id)
	delete(b.incarnations, id)
}

// dropInboxLocked forgets an instance's pending events and timers after their
// rows were deleted (the instance reached a terminal state).
func (b *Backend) dropInboxLocked(inst *instance) {
	inst.pending = nil
	for _, t := range inst.timers {
		t.cancelled = true
	}
	inst.timers = nil
	inst.startDue = false
}

// notifyCompletionLocked wakes WaitForOrchestrationCompletion callers.
func (b *Backend) notifyCompletionLocked(id string) {
	if w, ok := b.completion[id]; ok {
		close(w.ch)
		delete(b.completion, id)
	}
}
