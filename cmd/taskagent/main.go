// Command taskagent runs the taskagent system: task and chat actors, the task
// processing workflow and the HTTP API, on the embedded runtime (the default: one
// process, data in SQLite) or beside a Dapr sidecar.
//
// Usage:
//
//	taskagent [serve] [flags]   serve the HTTP API (the default command)
//	taskagent help              print usage
//
// Every flag can also be set by an environment variable; a flag wins over the
// environment. Run "taskagent serve -h" for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "taskagent:", err)
		}
		os.Exit(2)
	}
}

// run is the whole program, parameterised so that tests can run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := parseServeConfig(args, getenv, stderr)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, stdout, stderr)
	case "bench":
		return runBench(ctx, args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

const usage = `taskagent: a stateful task-agent system.

Commands:
  serve   serve the HTTP API (the default)
  bench   load a running server and check the results ("taskagent bench -h")
  help    print this text

Run "taskagent serve -h" for the flags and environment variables of serve.
`
