package embedded

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/actor"
)

// counter is a minimal actor with durable state, for the benchmarks.
func counter() actor.Type {
	return actor.Type{
		Name: "Counter",
		Methods: map[string]actor.Method{
			"Incr": actor.Typed(func(ctx context.Context, t actor.Turn, _ struct{}) (int, error) {
				var n int
				if _, err := t.Get(ctx, "n", &n); err != nil {
					return 0, err
				}
				n++
				return n, t.Set("n", n)
			}),
			"Get": actor.Typed(func(ctx context.Context, t actor.Turn, _ struct{}) (int, error) {
				var n int
				_, err := t.Get(ctx, "n", &n)
				return n, err
			}),
		},
	}
}

// BenchmarkInvokeWrite measures durable actor calls: every call changes state and
// returns only once that change is committed (synchronous=FULL), spread over 1,000
// actors by many concurrent callers.
func BenchmarkInvokeWrite(b *testing.B) {
	h, err := Open(context.Background(), b.TempDir(), []actor.Type{counter()}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	var next atomic.Int64
	b.SetParallelism(64) // callers per core: enough to fill a group commit
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprint(next.Add(1) % 1000)
			if _, err := h.Invoke(context.Background(), "Counter", id, "Incr", nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// BenchmarkInvokeRead measures calls that only read cached state.
func BenchmarkInvokeRead(b *testing.B) {
	h, err := Open(context.Background(), b.TempDir(), []actor.Type{counter()}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprint(next.Add(1) % 1000)
			if _, err := h.Invoke(context.Background(), "Counter", id, "Get", nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// BenchmarkActivations10k activates 10,000 actors, each with a stored value, and
// reports the heap they keep alive.
func BenchmarkActivations10k(b *testing.B) {
	const actors = 10_000
	for range b.N {
		h, err := Open(context.Background(), b.TempDir(), []actor.Type{counter()}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		before := heapInUse()
		for i := range actors {
			if _, err := h.Invoke(context.Background(), "Counter", fmt.Sprintf("actor-%05d", i), "Incr", nil); err != nil {
				b.Fatal(err)
			}
		}
		if got := h.Stats().Active; got != actors {
			b.Fatalf("%d active actors, want %d", got, actors)
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/actors, "heap-B/actor")
		b.ReportMetric(float64(after-before)/(1<<20), "heap-MiB/10k")
		h.Close()
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
