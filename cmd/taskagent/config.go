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
		{"runtime", "TASKAGENT_RUNTIME", "runtime: embedded", stringValue{&c.Runtime}},
		{"actor-idle-timeout", "TASKAGENT_ACTOR_IDLE_TIMEOUT", "deactivate actors idle for this long", durationValue{&c.ActorIdleTime}},
		{"chat-history", "TASKAGENT_CHAT_HISTORY", "exchanges of chat history kept per user", intValue{&c.ChatHistory}},
		{"max-body-bytes", "TASKAGENT_MAX_BODY_BYTES", "largest request body accepted", int64Value{&c.MaxBodyBytes}},
		{"shutdown-timeout", "TASKAGENT_SHUTDOWN_TIMEOUT", "how long to wait for requests on shutdown", durationValue{&c.ShutdownTimeout}},
		{"log-level", "TASKAGENT_LOG_LEVEL", "debug, info, warn or error", levelValue{&c.LogLevel}},
		{"log-format", "TASKAGENT_LOG_FORMAT", "text or json", stringValue{&c.LogFormat}},
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
		fs.Var(s.value, s.flag, fmt.Sprintf("%s (env %s)", s.usage, s.env))
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
	if c.Runtime != "embedded" {
		problems = append(problems, fmt.Errorf("runtime %q is not supported; use embedded", c.Runtime))
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
	if c.ShutdownTimeout <= 0 {
		problems = append(problems, errors.New("shutdown-timeout must be positive"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		problems = append(problems, fmt.Errorf("log-format %q is not text or json", c.LogFormat))
	}
	return errors.Join(problems...)
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
