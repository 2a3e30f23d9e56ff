package embedded

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taskagent/taskagent/internal/errs"
)

// The scheduler keeps every registered reminder in memory, ordered by due time in a
// heap, and one timer for the earliest: no polling, and no goroutine per reminder.
// The database is the source of truth; the heap is loaded from it at start-up and
// follows every committed change (applied).
//
// Every registration gets a new generation number. A callback that finishes commits
// its bookkeeping (delete a one-shot reminder, move a periodic one on) only if the
// stored reminder is still the generation that fired, so a reminder registered again
// while its callback ran is never lost.
type scheduler struct {
	h   *Host
	gen atomic.Int64
	sem chan struct{}
	wg  sync.WaitGroup

	mu    sync.Mutex
	byKey map[reminderKey]*reminderEntry
	queue entryHeap
	wake  chan struct{}
}

type reminderKey struct{ typ, id, name string }

type reminderEntry struct {
	key      reminderKey
	due      time.Time
	period   time.Duration
	data     []byte
	gen      int64
	failures int
	index    int // position in the heap; -1 while out of it (firing)
}

func newScheduler(h *Host) *scheduler {
	return &scheduler{
		h:     h,
		sem:   make(chan struct{}, h.opts.MaxConcurrentReminders),
		byKey: make(map[reminderKey]*reminderEntry),
		wake:  make(chan struct{}, 1),
	}
}

func (s *scheduler) nextGen() int64 { return s.gen.Add(1) }

func (s *scheduler) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byKey)
}

// load reads every stored reminder into the heap.
func (s *scheduler) load(ctx context.Context) error {
	rows, err := s.h.reader.QueryContext(ctx, `SELECT actor_type, actor_id, name, due, period, data, gen FROM reminders`)
	if err != nil {
		return fmt.Errorf("load reminders: %w", err)
	}
	defer rows.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	var maxGen int64
	for rows.Next() {
		var e reminderEntry
		var due, period int64
		if err := rows.Scan(&e.key.typ, &e.key.id, &e.key.name, &due, &period, &e.data, &e.gen); err != nil {
			return fmt.Errorf("load reminders: %w", err)
		}
		e.due, e.period = time.Unix(0, due), time.Duration(period)
		maxGen = max(maxGen, e.gen)
		s.byKey[e.key] = &e
		heap.Push(&s.queue, &e)
	}
	s.gen.Store(maxGen)
	return rows.Err()
}

// applied brings the heap up to date with a committed change.
func (s *scheduler) applied(ch *change) {
	if len(ch.reminders) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range ch.reminders {
		k := reminderKey{ch.actorType, ch.actorID, w.name}
		cur := s.byKey[k]
		switch {
		case w.ifGen != 0 && (cur == nil || cur.gen != w.ifGen):
			// Bookkeeping for a registration that has since been replaced.
		case w.delete:
			s.remove(k)
		case w.ifGen != 0:
			cur.due, cur.failures = w.due, 0
			s.push(cur)
		default:
			s.remove(k)
			e := &reminderEntry{key: k, due: w.due, period: w.period, data: w.data, gen: w.gen, index: -1}
			s.byKey[k] = e
			s.push(e)
		}
	}
}

// remove forgets the reminder k; s.mu is held.
func (s *scheduler) remove(k reminderKey) {
	if e := s.byKey[k]; e != nil {
		if e.index >= 0 {
			heap.Remove(&s.queue, e.index)
		}
		delete(s.byKey, k)
	}
}

// push (re)queues e and wakes the run loop if e is now the earliest; s.mu is held.
func (s *scheduler) push(e *reminderEntry) {
	if e.index >= 0 {
		heap.Fix(&s.queue, e.index)
	} else {
		heap.Push(&s.queue, e)
	}
	if s.queue[0] == e {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// run fires reminders as they come due until ctx is done, then waits for the
// callbacks under way.
func (s *scheduler) run(ctx context.Context) {
	defer s.wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		now := s.h.opts.Now()
		var due []*reminderEntry
		for len(s.queue) > 0 && !s.queue[0].due.After(now) {
			due = append(due, heap.Pop(&s.queue).(*reminderEntry))
		}
		wait := time.Hour
		if len(s.queue) > 0 {
			wait = s.queue[0].due.Sub(now)
		}
		s.mu.Unlock()

		for _, e := range due {
			select {
			case s.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			s.wg.Add(1)
			go func() {
				defer func() { <-s.sem; s.wg.Done() }()
				s.fire(ctx, e)
			}()
		}
		if len(due) > 0 {
			continue // more may have come due while dispatching
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			timer.Stop() // since Go 1.23 a stopped timer delivers nothing stale
		case <-timer.C:
		}
	}
}

// fire runs e's callback in a turn of its actor. Success commits the reminder's
// bookkeeping in that same turn; failure requeues it with backoff.
func (s *scheduler) fire(ctx context.Context, e *reminderEntry) {
	h := s.h
	k := actorKey{e.key.typ, e.key.id}
	bookkeeping := reminderWrite{name: e.key.name, delete: true, ifGen: e.gen}
	if e.period > 0 {
		next := e.due.Add(e.period)
		if now := h.opts.Now(); !next.After(now) {
			next = now.Add(e.period) // missed periods while down are not fired one by one
		}
		bookkeeping = reminderWrite{name: e.key.name, due: next, ifGen: e.gen}
	}
	err := h.inTurn(ctx, k, func(ch *change) {
		ch.reminders = append([]reminderWrite{bookkeeping}, ch.reminders...)
	}, func(t *turn) error {
		typ, ok := h.types[k.typ]
		if !ok || typ.Remind == nil {
			return errs.E(errs.NotFound, "actor type %q takes no reminders", k.typ)
		}
		return typ.Remind(ctx, t, e.key.name, e.data)
	})
	if err == nil {
		return
	}
	if ctx.Err() != nil {
		return // shutting down; the stored reminder fires after the next start
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey[e.key] != e {
		return // replaced or deleted while it ran
	}
	e.failures++
	backoff := h.opts.ReminderRetry << min(e.failures-1, 20)
	backoff = min(backoff, h.opts.ReminderRetryMax)
	e.due = h.opts.Now().Add(backoff)
	h.log.Warn("reminder callback failed; retrying", "actor_type", k.typ, "actor_id", k.id,
		"reminder", e.key.name, "failures", e.failures, "retry_in", backoff, "err", err)
	s.push(e)
}

// entryHeap orders reminders by due time.
type entryHeap []*reminderEntry

func (q entryHeap) Len() int           { return len(q) }
func (q entryHeap) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q entryHeap) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *entryHeap) Push(x any) {
	e := x.(*reminderEntry)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *entryHeap) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	e.index = -1
	return e
}
