package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/workflow"
)

// BenchmarkTaskProcessingWorkflow runs the seed's workflow end to end on the
// embedded runtime, as the server does but without HTTP: b.N workflows, submitted
// 64 at a time, each through its five activities against real actors and SQLite
// files with durable commits. Besides wall time it reports CPU time per workflow
// (cpu-ns/op), which is what bounds throughput on a busy machine and varies less
// than wall time between runs.
func BenchmarkTaskProcessingWorkflow(b *testing.B) {
	ctx := b.Context()
	cfg := defaultConfig()
	cfg.DataDir = b.TempDir()
	sys, _, err := startSystem(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.close(stop)
	})
	svc := workflow.Service{Engine: sys.engine, Notify: cfg.notifyPolicy()}

	b.ResetTimer()
	cpu, written := cpuTime(), bytesWritten()
	ids := make(chan string)
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for range 64 {
		wg.Go(func() {
			for id := range ids {
				_, err := svc.Start(ctx, workflow.Input{TaskID: id, Title: "benchmark task " + id, Description: "processed by the benchmark",
					Assignee: "user@example.com", DeadlineSeconds: 3600})
				if err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		})
	}
	for i := range b.N {
		ids <- fmt.Sprintf("bench-%d", i)
	}
	close(ids)
	wg.Wait()
	select {
	case err := <-errc:
		b.Fatal(err)
	default:
	}
	waitForEvents(b, sys, actors.EventTaskNotified, b.N)
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	if written >= 0 {
		b.ReportMetric(float64(bytesWritten()-written)/float64(b.N), "disk-B/op")
	}
}

// waitForEvents waits until the event log holds n events of type typ.
func waitForEvents(b *testing.B, sys *system, typ string, n int) {
	ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
	defer cancel()
	var after int64
	for seen := 0; seen < n; {
		evs, err := sys.events.Read(ctx, "", after, 1000)
		if err != nil {
			b.Fatalf("%d of %d %s events: %v", seen, n, typ, err)
		}
		for _, e := range evs {
			if e.Type == typ {
				seen++
			}
			after = e.ID
		}
		if len(evs) == 0 {
			if err := sys.events.Wait(ctx, after); err != nil {
				b.Fatalf("%d of %d %s events: %v", seen, n, typ, err)
			}
		}
	}
}

// bytesWritten returns the bytes this process has caused to be written to
// storage, or -1 where /proc does not say.
func bytesWritten() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// cpuTime returns the CPU time, user and system, this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
