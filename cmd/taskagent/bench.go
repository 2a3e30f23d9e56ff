package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-isatty"

	"github.com/taskagent/taskagent/internal/bench"
)

const benchUsage = `Usage: taskagent bench [flags]

Loads a running taskagent server through its HTTP API: --tasks tasks through
POST /tasks/process across --users users, chat messages from every user, deadlines
that pass during the run; tracks every workflow through the event stream, reports
throughput and latencies, and exits non-zero if any check falls short.

Notifications of the last --fail-share of the users must fail: start the server
with the value that --print-fail-assignees prints, e.g.

  TASKAGENT_NOTIFY_FAIL_ASSIGNEES=$(taskagent bench --print-fail-assignees --users 100) taskagent serve

Flags:
`

// parseBenchConfig reads the bench command's flags. print is set by
// --print-fail-assignees, asJSON by --json.
func parseBenchConfig(args []string, stderr io.Writer) (cfg bench.Config, asJSON, print bool, err error) {
	cfg = bench.DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.URL, "url", cfg.URL, "base URL of the taskagent server")
	fs.IntVar(&cfg.Tasks, "tasks", cfg.Tasks, "tasks to process")
	fs.IntVar(&cfg.Users, "users", cfg.Users, "users the tasks are assigned to, round robin")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "requests in flight at most")
	fs.Float64Var(&cfg.FailShare, "fail-share", cfg.FailShare, "share of users whose notifications the server fails (the last ceil(share*users))")
	fs.DurationVar(&cfg.DeadlineSpread, "deadline-spread", cfg.DeadlineSpread, "D: deadlines are uniformly D to 2D after each request (at least 1s)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "longest the load and the wait for its results may take")
	fs.DurationVar(&cfg.Grace, "grace", cfg.Grace, "how long past the last deadline to wait for stragglers once nothing new arrives")
	fs.IntVar(&cfg.ChatsPerUser, "chats-per-user", cfg.ChatsPerUser, "chat messages each user sends during the load")
	fs.IntVar(&cfg.VerifyWorkflows, "verify-workflows", cfg.VerifyWorkflows, "workflows of succeeding users read back at the end (failing users' and unfinished ones always are)")
	fs.StringVar(&cfg.RunID, "run-id", "", "prefix of this run's task ids (letters and digits; default random)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&print, "print-fail-assignees", false, "print the TASKAGENT_NOTIFY_FAIL_ASSIGNEES value for --users and --fail-share, and exit")
	if err := fs.Parse(args); err != nil {
		return cfg, false, false, err
	}
	if fs.NArg() > 0 {
		return cfg, false, false, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if cfg.DeadlineSpread < 0 || cfg.Timeout < 0 || cfg.VerifyWorkflows < 0 {
		// Zero takes the default; a negative value is a mistake, not a default.
		return cfg, false, false, errors.New("durations and counts must not be negative")
	}
	cfg = cfg.Normalize()
	return cfg, asJSON, print, cfg.Validate()
}

// runBench is "taskagent bench": the report goes to stdout, progress to stderr.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, asJSON, print, err := parseBenchConfig(args, stderr)
	if err != nil {
		return err
	}
	if print {
		fmt.Fprintln(stdout, bench.FailAssigneesEnv(cfg.Users, cfg.FailShare))
		return nil
	}
	if f, ok := stderr.(*os.File); ok {
		cfg.Bar = isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
	}
	rep, err := bench.Run(ctx, cfg, stderr)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprint(stdout, rep.Text())
	}
	if err := rep.Check(); err != nil {
		n := strings.Count(err.Error(), "\n") + 1
		return fmt.Errorf("bench: %d shortfalls:\n%w", n, err)
	}
	return nil
}
