package dtworker

import (
	"context"
	"sync/atomic"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
)

// pooledExecutor runs every orchestration turn and activity on one of a set of
// long-lived goroutines instead of the goroutine durabletask-go starts for each
// work item.
//
// A new goroutine starts with a small stack, and a turn or an activity (JSON
// decoding, an actor call, SQLite) needs several times more: the stack was
// grown and copied a few times for every work item, which took a tenth of the
// embedded engine's CPU time. A goroutine of the pool keeps the stack it grew
// for the work items after it. Handing the call over costs two goroutine
// switches.
type pooledExecutor struct {
	backend.Executor
	pool *stackPool
}

func (e *pooledExecutor) ExecuteOrchestrator(ctx context.Context, iid api.InstanceID, oldEvents, newEvents []*backend.HistoryEvent) (res *backend.ExecutionResults, err error) {
	e.pool.run(func() { res, err = e.Executor.ExecuteOrchestrator(ctx, iid, oldEvents, newEvents) })
	return res, err
}

func (e *pooledExecutor) ExecuteActivity(ctx context.Context, iid api.InstanceID, ev *backend.HistoryEvent) (res *backend.HistoryEvent, err error) {
	e.pool.run(func() { res, err = e.Executor.ExecuteActivity(ctx, iid, ev) })
	return res, err
}

// stackPool runs functions on up to max goroutines that wait for work between
// calls. It never stops them: there are at most max, each parked on a channel
// while idle.
type stackPool struct {
	max     int64
	started atomic.Int64
	jobs    chan job
}

type job struct {
	fn   func()
	done chan struct{}
}

func newStackPool(max int) *stackPool {
	return &stackPool{max: int64(max), jobs: make(chan job)}
}

// run calls fn on a goroutine of the pool and returns when fn has returned. A
// panic in fn is not recovered: as on the goroutine durabletask-go would have
// run it on, it ends the process.
func (p *stackPool) run(fn func()) {
	j := job{fn: fn, done: make(chan struct{})}
	select {
	case p.jobs <- j: // an idle goroutine took it
	default:
		if p.started.Add(1) <= p.max {
			go p.work(j)
		} else {
			p.started.Add(-1)
			p.jobs <- j // wait for one to be idle
		}
	}
	<-j.done
}

func (p *stackPool) work(j job) {
	for {
		j.fn()
		close(j.done)
		j = <-p.jobs
	}
}
