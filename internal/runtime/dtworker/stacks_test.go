package dtworker

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The pool runs at most max calls at once on goroutines it keeps: more callers
// wait for one to be idle, every call runs once, and run returns only after
// its function has.
func TestStackPoolBoundsAndReusesGoroutines(t *testing.T) {
	const max, callers = 4, 12
	p := newStackPool(max)
	release := make(chan struct{})
	var running, peak, calls atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ran bool
			p.run(func() {
				n := running.Add(1)
				for {
					if old := peak.Load(); n <= old || peak.CompareAndSwap(old, n) {
						break
					}
				}
				<-release
				running.Add(-1)
				calls.Add(1)
				ran = true
			})
			if !ran {
				t.Error("run returned before its function ran")
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for running.Load() < max {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls running after 10 s, want %d", running.Load(), max)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if got := calls.Load(); got != callers {
		t.Errorf("%d calls ran, want %d", got, callers)
	}
	if got := peak.Load(); got != max {
		t.Errorf("at most %d calls ran at once, want %d", got, max)
	}
	if got := p.started.Load(); got != max {
		t.Errorf("pool started %d goroutines, want %d", got, max)
	}

	// Later calls reuse the same goroutines.
	for range 10 {
		p.run(func() {})
	}
	if got := p.started.Load(); got != max {
		t.Errorf("pool started %d goroutines after more calls, want %d", got, max)
	}
}
