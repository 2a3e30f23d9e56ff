package wfbackend

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/backend/sqlite"
	"github.com/microsoft/durabletask-go/task"

	"github.com/taskagent/taskagent/internal/runtime/dtlog"
)

// The benchmarks run five-activity sequential workflows (fiveActivityChain)
// through durabletask-go's TaskHubWorker over this backend and over
// durabletask-go's own SQLite backend, each on a file in b.TempDir().
//
//	go test -run '^$' -bench . -benchtime 5000x ./internal/runtime/embedded/wfbackend/
//
// durabletask-go's backend manages about 10 workflows/s; give it a smaller
// count: -bench 'FiveActivity/durabletask' -benchtime 200x.
//
// Sub-benchmarks:
//   - throughput: b.N workflows, WFBACKEND_BENCH_CONCURRENCY (default 500)
//     in flight at a time; reports workflows/s.
//   - latency: b.N workflows one after another; reports p50 and p99 from
//     scheduling to the commit that completes the workflow.
//
// Completion is observed the same way for both backends, by a wrapper that
// sees the orchestration work item that completes a workflow commit, so that
// neither pays for client polling.

// completionTap wraps a backend and signals when an instance's completing turn
// has been committed.
type completionTap struct {
	backend.Backend
	mu      sync.Mutex
	waiting map[api.InstanceID]chan struct{}
}

func newCompletionTap(be backend.Backend) *completionTap {
	return &completionTap{Backend: be, waiting: make(map[api.InstanceID]chan struct{})}
}

func (c *completionTap) expect(id api.InstanceID) <-chan struct{} {
	ch := make(chan struct{})
	c.mu.Lock()
	c.waiting[id] = ch
	c.mu.Unlock()
	return ch
}

func (c *completionTap) CompleteOrchestrationWorkItem(ctx context.Context, wi *backend.OrchestrationWorkItem) error {
	err := c.Backend.CompleteOrchestrationWorkItem(ctx, wi)
	if err == nil && wi.State.IsCompleted() {
		c.mu.Lock()
		if ch, ok := c.waiting[wi.InstanceID]; ok {
			close(ch)
			delete(c.waiting, wi.InstanceID)
		}
		c.mu.Unlock()
	}
	return err
}

type benchBackend struct {
	name string
	open func(b *testing.B) backend.Backend
}

var benchBackends = []benchBackend{
	{"wfbackend", func(b *testing.B) backend.Backend {
		be, err := Open(filepath.Join(b.TempDir(), "wf.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			s := be.Stats()
			if s.Transactions > 0 {
				b.ReportMetric(float64(s.Changes)/float64(s.Transactions), "changes/commit")
			}
			if err := be.Close(); err != nil {
				b.Error(err)
			}
		})
		return be
	}},
	{"durabletask-sqlite", func(b *testing.B) backend.Backend {
		return sqlite.NewSqliteBackend(sqlite.NewSqliteOptions(filepath.Join(b.TempDir(), "dt.db")), dtlog.New(nil))
	}},
}

func benchConcurrency() int {
	if n, err := strconv.Atoi(os.Getenv("WFBACKEND_BENCH_CONCURRENCY")); err == nil && n > 0 {
		return n
	}
	return 500
}

// startBench starts a worker over a tapped backend.
func startBench(b *testing.B, bb benchBackend, parallelism int32) (backend.TaskHubClient, *completionTap) {
	tap := newCompletionTap(bb.open(b))
	r := task.NewTaskRegistry()
	if err := registerChain(r); err != nil {
		b.Fatal(err)
	}
	client, stop, err := runWorker(tap, r, parallelism)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	return client, tap
}

// runOne schedules one workflow and waits until its completion is committed.
func runOne(ctx context.Context, b *testing.B, client backend.TaskHubClient, tap *completionTap, id string) {
	done := tap.expect(api.InstanceID(id))
	if _, err := client.ScheduleNewOrchestration(ctx, "Chain", api.WithInstanceID(api.InstanceID(id)), api.WithInput(0)); err != nil {
		b.Error(err)
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
		b.Errorf("workflow %s: %v", id, ctx.Err())
	}
}

func BenchmarkFiveActivityWorkflows(b *testing.B) {
	for _, bb := range benchBackends {
		b.Run(bb.name+"/throughput", func(b *testing.B) {
			throughput(b, bb, benchConcurrency())
		})
		b.Run(bb.name+"/latency", func(b *testing.B) {
			client, tap := startBench(b, bb, 16)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				runOne(ctx, b, client, tap, fmt.Sprintf("l-%d", i))
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// throughput runs b.N workflows through bb, conc in flight at a time, and
// reports workflows/s.
func throughput(b *testing.B, bb benchBackend, conc int) {
	client, tap := startBench(b, bb, int32(conc))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			runOne(ctx, b, client, tap, fmt.Sprintf("t-%d", i))
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "workflows/s")
}

// TestThroughputAgainstBaseline is the regression check the test command runs: a
// few seconds of five-activity workflows through this backend and through
// durabletask-go's own SQLite backend, on the same machine in the same run. It
// fails when ours is no longer far ahead: a ratio, not an absolute time, so a slow
// or busy machine does not fail it, a real regression does. Measured without the
// race detector the ratio is about 150; under it, lower.
func TestThroughputAgainstBaseline(t *testing.T) {
	const minRatio = 5
	rate := func(bb benchBackend) float64 {
		res := testing.Benchmark(func(b *testing.B) { throughput(b, bb, 64) })
		if res.N == 0 {
			t.Fatalf("%s: the benchmark did not run", bb.name)
		}
		return res.Extra["workflows/s"]
	}
	ours, theirs := rate(benchBackends[0]), rate(benchBackends[1])
	t.Logf("five-activity workflows/s: wfbackend %.0f, durabletask-go sqlite %.1f, ratio %.0f", ours, theirs, ours/theirs)
	if theirs <= 0 || ours/theirs < minRatio {
		t.Errorf("wfbackend runs %.0f workflows/s, durabletask-go's SQLite backend %.1f: ratio %.1f, want at least %d", ours, theirs, ours/theirs, minRatio)
	}
}
