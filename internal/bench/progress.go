package bench

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// barWidth is the progress bar's length in characters.
const barWidth = 30

// showProgress writes the run's progress until ctx ends: a bar redrawn in place
// several times a second when cfg.Bar is set, a line every cfg.ProgressEvery
// otherwise.
func (r *runner) showProgress(ctx context.Context, started time.Time) {
	every := r.cfg.ProgressEvery
	if r.cfg.Bar {
		every = 200 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if r.cfg.Bar {
				fmt.Fprintf(r.progress, "\r\033[K%s\n", r.progressLine(started, true))
			}
			return
		case <-tick.C:
			if r.cfg.Bar {
				fmt.Fprintf(r.progress, "\r\033[K%s", r.progressLine(started, true))
			} else {
				fmt.Fprintln(r.progress, r.progressLine(started, false))
			}
		}
	}
}

// progressLine describes the run so far. The bar fills as workflows finish and
// reminders fire: both must happen for every task.
func (r *runner) progressLine(started time.Time, bar bool) string {
	r.mu.Lock()
	n := len(r.tasks)
	submitted, finished, overdue, comp := r.submitted, r.finished, r.overdueTasks, r.compensations
	errors := 0
	for _, c := range r.failures {
		errors += c
	}
	r.mu.Unlock()
	elapsed := time.Since(started).Truncate(time.Second)
	line := fmt.Sprintf("%v  sent %d/%d  finished %d  compensated %d  overdue %d  errors %d",
		elapsed, submitted, n, finished, comp, overdue, errors)
	if !bar {
		return line
	}
	done := float64(finished+overdue) / float64(2*max(n, 1))
	fill := int(done * barWidth)
	return fmt.Sprintf("[%s%s] %3.0f%%  %s", strings.Repeat("#", fill), strings.Repeat(".", barWidth-fill), 100*done, line)
}
