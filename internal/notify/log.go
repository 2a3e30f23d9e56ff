package notify

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/taskagent/taskagent/internal/errs"
)

// Log is the notifier of the embedded runtime and of demos: delivery is a structured
// log line, and an optional Publish hook lets the caller publish a "task.notified"
// event so that subscribers (the UI, tests) see that the assignee was told.
type Log struct {
	// Logger receives the line; nil means slog.Default().
	Logger *slog.Logger
	// Publish, when set, is called after the log line. Its error is Notify's error,
	// so an event that could not be published makes the attempt fail and be retried
	// (the log line may then repeat: delivery is at least once).
	Publish func(ctx context.Context, n Notification) error
}

// Name returns "log".
func (l *Log) Name() string { return KindLog }

// Notify logs n and publishes it through the hook. It returns errs.Invalid for a
// malformed notification, otherwise Publish's error (errs.Unavailable when the hook
// failed because ctx ended).
func (l *Log) Notify(ctx context.Context, n Notification) error {
	if err := n.Validate(); err != nil {
		return err
	}
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	attrs := []slog.Attr{
		slog.String("task_id", n.TaskID),
		slog.String("assignee", n.Assignee),
		slog.String("title", n.Title),
		slog.String("notification_id", n.ID),
		slog.Int("attempt", n.Attempt),
	}
	if n.Deadline != nil {
		attrs = append(attrs, slog.Time("deadline", *n.Deadline))
	}
	logger.LogAttrs(ctx, slog.LevelInfo, "assignee notified", attrs...)
	if l.Publish == nil {
		return nil
	}
	err := l.Publish(ctx, n)
	if err == nil {
		return nil
	}
	// A hook that gave up because the attempt ran out of time may return a bare
	// context error; that is transient, and saying so lets the workflow retry.
	if errs.KindOf(err) == errs.Internal && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", errs.E(errs.Unavailable, "publish notification %s: %v", n.ID, ctx.Err()), err)
	}
	return fmt.Errorf("publish notification %s: %w", n.ID, err)
}
