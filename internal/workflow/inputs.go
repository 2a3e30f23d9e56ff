package workflow

import (
	"sync"
	"time"
)

// inputCacheSize bounds the decoded inputs kept between a workflow's turns: at
// least the workflows running at once under load (about 2,000 in a 10,000-task
// bench run), at a few hundred bytes each.
const inputCacheSize = 1 << 14

// inputCache keeps each running workflow's decoded Input, so that the replay at
// each turn does not decode the same JSON again: the engine re-runs the
// orchestrator from its start at every step. An execution is named by its
// instance id and start time, so an instance purged and started again with
// other input is a different entry. Entries go when their workflow returns, or
// oldest first once the cache is full; a miss only costs the decode.
type inputCache struct {
	mu    sync.Mutex
	m     map[executionKey]Input
	order []executionKey // insertion order, for eviction; may hold forgotten keys
	size  int
}

type executionKey struct {
	id      string
	started int64 // UnixNano of the execution's first turn
}

func newInputCache(size int) *inputCache {
	return &inputCache{m: make(map[executionKey]Input), size: size}
}

func keyOf(id string, started time.Time) executionKey {
	return executionKey{id: id, started: started.UnixNano()}
}

func (c *inputCache) get(k executionKey) (Input, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, ok := c.m[k]
	return in, ok
}

// put stores in under k. Input holds no memory shared with the caller that the
// orchestrator writes to: Notify is only read.
func (c *inputCache) put(k executionKey, in Input) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return
	}
	for len(c.m) >= c.size && len(c.order) > 0 {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	// Forgotten keys stay in order until they reach its head; compact when
	// they outnumber the live ones, so that order stays proportional to m.
	if len(c.order) > 2*c.size {
		live := c.order[:0]
		for _, o := range c.order {
			if _, ok := c.m[o]; ok {
				live = append(live, o)
			}
		}
		c.order = live
	}
	c.m[k] = in
	c.order = append(c.order, k)
}

func (c *inputCache) forget(k executionKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}
