package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestConfigPrecedence(t *testing.T) {
	env := map[string]string{
		"TASKAGENT_ADDR":               ":9000",
		"TASKAGENT_DATA_DIR":           "/var/lib/taskagent",
		"TASKAGENT_ACTOR_IDLE_TIMEOUT": "5m",
	}
	cfg, err := parseServeConfig([]string{"--addr", "127.0.0.1:7000"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:7000" {
		t.Errorf("addr = %q, want the flag's value over the environment's", cfg.Addr)
	}
	if cfg.DataDir != "/var/lib/taskagent" {
		t.Errorf("data dir = %q, want the environment's", cfg.DataDir)
	}
	if cfg.ActorIdleTime != 5*time.Minute {
		t.Errorf("idle timeout = %v, want 5m", cfg.ActorIdleTime)
	}
	if cfg.ChatHistory != 10 {
		t.Errorf("chat history = %d, want the default 10", cfg.ChatHistory)
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	env := map[string]string{"TASKAGENT_CHAT_HISTORY": "many", "TASKAGENT_ACTOR_IDLE_TIMEOUT": "soon"}
	_, err := parseServeConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err == nil {
		t.Fatal("bad environment accepted")
	}
	for _, want := range []string{"TASKAGENT_CHAT_HISTORY", "TASKAGENT_ACTOR_IDLE_TIMEOUT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	_, err = parseServeConfig([]string{"--chat-history", "0", "--log-format", "xml"}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "chat-history") || !strings.Contains(err.Error(), "log-format") {
		t.Fatalf("got %v, want both chat-history and log-format named", err)
	}
}

func TestDaprReminderRetryFloor(t *testing.T) {
	env := map[string]string{"DAPR_HTTP_PORT": "3500", "DAPR_GRPC_PORT": "50001"}
	getenv := func(k string) string { return env[k] }
	_, err := parseServeConfig([]string{"--runtime", "dapr", "--dapr-reminder-retry", "300ms"}, getenv, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "dapr-reminder-retry") {
		t.Fatalf("a 300ms retry: got %v, want an error naming dapr-reminder-retry", err)
	}
	cfg, err := parseServeConfig([]string{"--runtime", "dapr", "--dapr-reminder-retry", "1s"}, getenv, io.Discard)
	if err != nil {
		t.Fatalf("a 1s retry: %v", err)
	}
	if cfg.DaprReminderRetry != time.Second {
		t.Fatalf("retry = %v, want 1s", cfg.DaprReminderRetry)
	}
}

// The embedded runtime doubles the processors Go chose, unless GOMAXPROCS is
// set in the environment, which Go has then applied already; like Go, it
// ignores a value that is not a whole number above 0.
func TestEmbeddedProcs(t *testing.T) {
	for _, c := range []struct {
		env   string
		procs int
		want  int
		ok    bool
	}{
		{"", 2, 4, true},
		{"", 1, 2, true},
		{"3", 3, 0, false},
		{"abc", 2, 4, true},
		{"0", 2, 4, true},
	} {
		if n, ok := embeddedProcs(c.env, c.procs); n != c.want || ok != c.ok {
			t.Errorf("embeddedProcs(%q, %d) = %d, %v; want %d, %v", c.env, c.procs, n, ok, c.want, c.ok)
		}
	}
}
