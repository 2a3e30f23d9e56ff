package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/taskagent/taskagent/internal/notify"
	"github.com/taskagent/taskagent/internal/workflow"
)

// Config is everything serve needs, with defaults filled in and checked.
type Config struct {
	Addr            string
	DataDir         string
	Runtime         string
	ActorIdleTime   time.Duration
	ChatHistory     int
	MaxBodyBytes    int64
	ShutdownTimeout time.Duration
	LogLevel        slog.Level
	LogFormat       string

	WorkflowParallelism int
	MaxWaitingWorkflows int

	Notifier            string
	NotifyURL           string
	NotifyTimeout       time.Duration
	NotifyAttempts      int
	NotifyBackoff       time.Duration
	NotifyFailAssignees string
	NotifyFailureRate   float64
	BreakerFailures     int
	BreakerOpenTimeout  time.Duration

	DaprHTTPPort           int
	DaprGRPCPort           int
	DaprAPIToken           string
	AppAPIToken            string
	DaprReminderPartitions int
	DaprReminderRetry      time.Duration

	PprofAddr string

	EventRetention time.Duration
}

// setting binds one Config field to a flag and an environment variable.
type setting struct {
	flag, env, usage string
	value            flag.Value
}

func (c *Config) settings() []setting {
	return []setting{
		{"addr", "TASKAGENT_ADDR", "address to serve HTTP on", stringValue{&c.Addr}},
		{"data-dir", "TASKAGENT_DATA_DIR", "directory for the embedded runtime's data", stringValue{&c.DataDir}},
		{"runtime", "TASKAGENT_RUNTIME", "runtime: embedded or dapr", stringValue{&c.Runtime}},
		{"actor-idle-timeout", "TASKAGENT_ACTOR_IDLE_TIMEOUT", "deactivate actors idle for this long", durationValue{&c.ActorIdleTime}},
		{"chat-history", "TASKAGENT_CHAT_HISTORY", "exchanges of chat history kept per user", intValue{&c.ChatHistory}},
		{"max-body-bytes", "TASKAGENT_MAX_BODY_BYTES", "largest request body accepted", int64Value{&c.MaxBodyBytes}},
		{"shutdown-timeout", "TASKAGENT_SHUTDOWN_TIMEOUT", "how long to wait for requests on shutdown", durationValue{&c.ShutdownTimeout}},
		{"log-level", "TASKAGENT_LOG_LEVEL", "debug, info, warn or error", levelValue{&c.LogLevel}},
		{"log-format", "TASKAGENT_LOG_FORMAT", "text or json", stringValue{&c.LogFormat}},
		{"workflow-parallelism", "TASKAGENT_WORKFLOW_PARALLELISM", "workflow steps run at once", intValue{&c.WorkflowParallelism}},
		{"max-waiting-workflows", "TASKAGENT_MAX_WAITING_WORKFLOWS", "POST /tasks/process answers 429 while this many workflows wait to start (embedded runtime; 0: no limit)", intValue{&c.MaxWaitingWorkflows}},
		{"notifier", "TASKAGENT_NOTIFIER", "how assignees are notified: log or webhook", stringValue{&c.Notifier}},
		{"notify-url", "TASKAGENT_NOTIFY_URL", "the webhook notifier's URL", stringValue{&c.NotifyURL}},
		{"notify-timeout", "TASKAGENT_NOTIFY_TIMEOUT", "timeout of one notification attempt", durationValue{&c.NotifyTimeout}},
		{"notify-attempts", "TASKAGENT_NOTIFY_ATTEMPTS", "notification attempts before compensating", intValue{&c.NotifyAttempts}},
		{"notify-backoff", "TASKAGENT_NOTIFY_BACKOFF", "wait before the second notification attempt; doubles after", durationValue{&c.NotifyBackoff}},
		{"notify-fail-assignees", "TASKAGENT_NOTIFY_FAIL_ASSIGNEES", "comma-separated assignees whose notifications always fail (fault injection)", stringValue{&c.NotifyFailAssignees}},
		{"notify-failure-rate", "TASKAGENT_NOTIFY_FAILURE_RATE", "share of notifications that fail, 0 to 1 (fault injection)", floatValue{&c.NotifyFailureRate}},
		{"notify-breaker-failures", "TASKAGENT_NOTIFY_BREAKER_FAILURES", "consecutive notification failures that open the circuit breaker", intValue{&c.BreakerFailures}},
		{"notify-breaker-timeout", "TASKAGENT_NOTIFY_BREAKER_TIMEOUT", "how long the open breaker fails fast before a trial", durationValue{&c.BreakerOpenTimeout}},
		{"dapr-http-port", "DAPR_HTTP_PORT", "the Dapr sidecar's HTTP port (runtime dapr)", intValue{&c.DaprHTTPPort}},
		{"dapr-grpc-port", "DAPR_GRPC_PORT", "the Dapr sidecar's gRPC port (runtime dapr)", intValue{&c.DaprGRPCPort}},
		{"dapr-reminder-partitions", "TASKAGENT_DAPR_REMINDER_PARTITIONS", "state records each actor type's reminders are spread over when the SchedulerReminders feature is off (runtime dapr)", intValue{&c.DaprReminderPartitions}},
		{"dapr-reminder-retry", "TASKAGENT_DAPR_REMINDER_RETRY", "how soon a failed one-shot reminder fires again (runtime dapr)", durationValue{&c.DaprReminderRetry}},
		{"event-retention", "TASKAGENT_EVENT_RETENTION", "how long the event log keeps events (embedded runtime)", durationValue{&c.EventRetention}},
		{"pprof-addr", "TASKAGENT_PPROF_ADDR", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060; off when empty", stringValue{&c.PprofAddr}},
		// Secrets come from the environment only, never from a command line.
		{"", "DAPR_API_TOKEN", "token the app sends the sidecar", stringValue{&c.DaprAPIToken}},
		{"", "APP_API_TOKEN", "token the sidecar must send the app", stringValue{&c.AppAPIToken}},
	}
}

func defaultConfig() Config {
	return Config{
		Addr:            ":8080",
		DataDir:         "data",
		Runtime:         "embedded",
		ActorIdleTime:   60 * time.Minute,
		ChatHistory:     10,
		MaxBodyBytes:    64 << 10,
		ShutdownTimeout: 15 * time.Second,
		LogLevel:        slog.LevelInfo,
		LogFormat:       "text",

		WorkflowParallelism: 256,
		MaxWaitingWorkflows: 20_000,
		Notifier:            "log",
		NotifyTimeout:       5 * time.Second,
		NotifyAttempts:      3,
		NotifyBackoff:       time.Second,
		BreakerFailures:     5,
		BreakerOpenTimeout:  30 * time.Second,

		EventRetention:         7 * 24 * time.Hour,
		DaprReminderPartitions: 64,
		DaprReminderRetry:      5 * time.Second,
	}
}

// parseServeConfig fills a Config from defaults, then the environment, then flags,
// and reports every problem at once.
func parseServeConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var problems []error
	for _, s := range cfg.settings() {
		if v := getenv(s.env); v != "" {
			if err := s.value.Set(v); err != nil {
				problems = append(problems, fmt.Errorf("%s=%q: %w", s.env, v, err))
			}
		}
		if s.flag != "" {
			fs.Var(s.value, s.flag, fmt.Sprintf("%s (env %s)", s.usage, s.env))
		}
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}
	if len(problems) > 0 {
		return cfg, errors.Join(problems...)
	}
	return cfg, cfg.Validate()
}

// Validate reports every setting that is out of range.
func (c Config) Validate() error {
	var problems []error
	if c.Addr == "" {
		problems = append(problems, errors.New("addr is empty"))
	}
	switch c.Runtime {
	case "embedded":
	case "dapr":
		if c.DaprHTTPPort <= 0 || c.DaprGRPCPort <= 0 {
			problems = append(problems, errors.New("runtime dapr needs the sidecar's ports: set DAPR_HTTP_PORT and DAPR_GRPC_PORT"))
		}
		if c.DaprReminderPartitions < 0 || c.DaprReminderPartitions > 100_000 {
			problems = append(problems, fmt.Errorf("dapr-reminder-partitions %d is not between 0 and 100000", c.DaprReminderPartitions))
		}
		// A retry that comes due while Dapr 1.14.0's Scheduler deletes the
		// reminder can stop the Scheduler's job queue (docs/deploy.md).
		if c.DaprReminderRetry < time.Second {
			problems = append(problems, fmt.Errorf("dapr-reminder-retry %v is under 1s, which risks Dapr 1.14.0's Scheduler stopping (see Troubleshooting in docs/deploy.md)", c.DaprReminderRetry))
		}
	default:
		problems = append(problems, fmt.Errorf("runtime %q is not embedded or dapr", c.Runtime))
	}
	if c.Runtime == "embedded" && c.DataDir == "" {
		problems = append(problems, errors.New("data-dir is empty"))
	}
	if c.ActorIdleTime < time.Second {
		problems = append(problems, fmt.Errorf("actor-idle-timeout %v is under 1s", c.ActorIdleTime))
	}
	if c.ChatHistory < 1 || c.ChatHistory > 1000 {
		problems = append(problems, fmt.Errorf("chat-history %d is not between 1 and 1000", c.ChatHistory))
	}
	if c.MaxBodyBytes < 1<<10 || c.MaxBodyBytes > 64<<20 {
		problems = append(problems, fmt.Errorf("max-body-bytes %d is not between 1 KiB and 64 MiB", c.MaxBodyBytes))
	}
	if c.EventRetention < time.Minute {
		problems = append(problems, fmt.Errorf("event-retention %v is under 1m", c.EventRetention))
	}
	if c.ShutdownTimeout <= 0 {
		problems = append(problems, errors.New("shutdown-timeout must be positive"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		problems = append(problems, fmt.Errorf("log-format %q is not text or json", c.LogFormat))
	}
	if c.MaxWaitingWorkflows < 0 {
		problems = append(problems, fmt.Errorf("max-waiting-workflows %d is negative; 0 means no limit", c.MaxWaitingWorkflows))
	}
	if c.WorkflowParallelism < 1 || c.WorkflowParallelism > 10_000 {
		problems = append(problems, fmt.Errorf("workflow-parallelism %d is not between 1 and 10000", c.WorkflowParallelism))
	}
	if c.NotifyAttempts < 1 || c.NotifyAttempts > 20 {
		problems = append(problems, fmt.Errorf("notify-attempts %d is not between 1 and 20", c.NotifyAttempts))
	}
	if c.NotifyBackoff <= 0 {
		problems = append(problems, errors.New("notify-backoff must be positive"))
	}
	if err := c.notifyConfig().Validate(); err != nil {
		problems = append(problems, fmt.Errorf("notifier: %w", err))
	}
	return errors.Join(problems...)
}

// notifyConfig is the notifier part of c.
func (c Config) notifyConfig() notify.Config {
	return notify.Config{
		Kind:               c.Notifier,
		URL:                c.NotifyURL,
		Timeout:            c.NotifyTimeout,
		FailAssignees:      notify.ParseFailAssignees(c.NotifyFailAssignees),
		FailureRate:        c.NotifyFailureRate,
		BreakerFailures:    c.BreakerFailures,
		BreakerOpenTimeout: c.BreakerOpenTimeout,
	}
}

// notifyPolicy is the retry policy new workflows get for notifications.
func (c Config) notifyPolicy() workflow.RetryPolicy {
	p := workflow.DefaultNotifyPolicy()
	p.MaxAttempts = c.NotifyAttempts
	p.FirstInterval = workflow.Duration(c.NotifyBackoff)
	p.AttemptTimeout = workflow.Duration(c.NotifyTimeout)
	return p
}

type floatValue struct{ p *float64 }

func (v floatValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}
func (v floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return errors.New("not a number")
	}
	*v.p = f
	return nil
}

type stringValue struct{ p *string }

func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
func (v stringValue) Set(s string) error { *v.p = strings.TrimSpace(s); return nil }

type intValue struct{ p *int }

func (v intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}
func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return errors.New("not a whole number")
	}
	*v.p = n
	return nil
}

type int64Value struct{ p *int64 }

func (v int64Value) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatInt(*v.p, 10)
}
func (v int64Value) Set(s string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return errors.New("not a whole number")
	}
	*v.p = n
	return nil
}

type durationValue struct{ p *time.Duration }

func (v durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}
func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return errors.New("not a duration such as 90s or 60m")
	}
	*v.p = d
	return nil
}

type levelValue struct{ p *slog.Level }

func (v levelValue) String() string {
	if v.p == nil {
		return "INFO"
	}
	return v.p.String()
}
func (v levelValue) Set(s string) error { return v.p.UnmarshalText([]byte(strings.TrimSpace(s))) }
