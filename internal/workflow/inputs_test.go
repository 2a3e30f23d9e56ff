package workflow

import (
	"fmt"
	"testing"
	"time"
)

func TestInputCacheStaysBounded(t *testing.T) {
	const size = 8
	c := newInputCache(size)
	t0 := time.Unix(1700000000, 0)
	key := func(i int) executionKey { return keyOf(fmt.Sprintf("wf-%d", i), t0) }

	// Full: the oldest entries make room.
	for i := range 3 * size {
		c.put(key(i), Input{TaskID: fmt.Sprint(i)})
	}
	if len(c.m) != size {
		t.Fatalf("%d entries, want %d", len(c.m), size)
	}
	if _, ok := c.get(key(0)); ok {
		t.Error("the oldest entry survived eviction")
	}
	if in, ok := c.get(key(3*size - 1)); !ok || in.TaskID != fmt.Sprint(3*size-1) {
		t.Errorf("newest entry = %+v, %v", in, ok)
	}

	// The same id started at another time is another execution.
	if _, ok := c.get(keyOf("wf-23", t0.Add(time.Nanosecond))); ok {
		t.Error("a later execution of the same instance hit the cache")
	}

	// Entries that are forgotten never fill the cache, and their keys do not
	// pile up in the eviction order.
	c = newInputCache(size)
	for i := range 100 * size {
		c.put(key(i), Input{})
		c.forget(key(i))
	}
	if len(c.m) != 0 || len(c.order) > 2*size+1 {
		t.Fatalf("%d entries and %d keys in order after put and forget, want 0 and at most %d", len(c.m), len(c.order), 2*size+1)
	}
}
