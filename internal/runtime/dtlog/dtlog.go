// Package dtlog adapts log/slog to durabletask-go's logger, for the workflow
// workers of both runtimes.
package dtlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/microsoft/durabletask-go/backend"
)

// New adapts a *slog.Logger to durabletask-go's backend.Logger, for
// backend.NewOrchestrationWorker, NewActivityTaskWorker and NewTaskHubWorker.
// Messages below the handler's level are not formatted: the workers log at
// debug level several times per work item.
func New(l *slog.Logger) backend.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return workerLogger{l}
}

type workerLogger struct{ l *slog.Logger }

func (w workerLogger) on(level slog.Level) bool { return w.l.Enabled(context.Background(), level) }

func (w workerLogger) print(level slog.Level, v []any) {
	if w.on(level) {
		w.l.Log(context.Background(), level, fmt.Sprint(v...))
	}
}

func (w workerLogger) printf(level slog.Level, format string, v []any) {
	if w.on(level) {
		w.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (w workerLogger) Debug(v ...any)                 { w.print(slog.LevelDebug, v) }
func (w workerLogger) Debugf(format string, v ...any) { w.printf(slog.LevelDebug, format, v) }
func (w workerLogger) Info(v ...any)                  { w.print(slog.LevelInfo, v) }
func (w workerLogger) Infof(format string, v ...any)  { w.printf(slog.LevelInfo, format, v) }
func (w workerLogger) Warn(v ...any)                  { w.print(slog.LevelWarn, v) }
func (w workerLogger) Warnf(format string, v ...any)  { w.printf(slog.LevelWarn, format, v) }
func (w workerLogger) Error(v ...any)                 { w.print(slog.LevelError, v) }
func (w workerLogger) Errorf(format string, v ...any) { w.printf(slog.LevelError, format, v) }
