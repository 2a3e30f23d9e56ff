package bench

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults for the Config fields left zero.
const (
	DefaultTasks          = 10_000
	DefaultUsers          = 100
	DefaultConcurrency    = 64
	DefaultFailShare      = 0.05
	DefaultDeadlineSpread = 10 * time.Second
	DefaultTimeout        = 15 * time.Minute
	DefaultGrace          = 10 * time.Second
	DefaultChatsPerUser   = 3
	// DefaultGetEvery samples GET /tasks/{id} for one task in this many, while the
	// load runs.
	DefaultGetEvery = 10
	// DefaultVerifyWorkflows is how many workflows of users whose notifications
	// succeed are read back with GET /workflows/{id} at the end; every workflow of
	// a failing user, and every one not seen finishing in the event stream, is read
	// as well.
	DefaultVerifyWorkflows = 500
	// DefaultRequestTimeout bounds one ordinary HTTP request.
	DefaultRequestTimeout = 30 * time.Second
)

// Config is one bench run. Start from DefaultConfig. Normalize fills zero fields
// with the defaults, except FailShare and ChatsPerUser, where zero means none;
// Validate checks the result.
type Config struct {
	// URL is the server's base URL, such as http://127.0.0.1:8080.
	URL string
	// Tasks is how many tasks go through POST /tasks/process.
	Tasks int
	// Users is how many assignees share the tasks (round robin); each also sends
	// ChatsPerUser chat messages.
	Users int
	// Concurrency bounds the requests in flight during the load.
	Concurrency int
	// FailShare is the share of users whose notifications the server must fail
	// (see FailAssignees); zero means none.
	FailShare float64
	// DeadlineSpread is D: every task's deadline_seconds is drawn uniformly from
	// [D, 2D], whole seconds, at least 1.
	DeadlineSpread time.Duration
	// Timeout bounds the load and the wait for its results; verification after it
	// has a budget of its own.
	Timeout time.Duration
	// Grace is how long past the last deadline the run waits for stragglers once
	// the event stream goes quiet.
	Grace time.Duration
	// ChatsPerUser is how many chat messages every user sends during the load;
	// zero means none.
	ChatsPerUser int
	// GetEvery samples GET /tasks/{id} latency on one task in GetEvery.
	GetEvery int
	// VerifyWorkflows is how many workflows of succeeding users are read back.
	VerifyWorkflows int
	// RequestTimeout bounds one ordinary request.
	RequestTimeout time.Duration
	// RunID prefixes every task id; empty picks a random one, so that runs against
	// the same server never collide.
	RunID string
	// Seed makes the deadlines reproducible; zero derives it from the run id.
	Seed uint64
	// Bar draws the progress as a bar redrawn in place (for a terminal) instead of
	// a line every few seconds.
	Bar bool
	// ProgressEvery is how often progress lines are written when Bar is false.
	ProgressEvery time.Duration
	// Client makes the requests; nil builds one with keep-alive and enough idle
	// connections for Concurrency.
	Client *http.Client
}

// DefaultConfig is a run with every default: 10,000 tasks across 100 users, 5% of
// them failing, 3 chat messages each, deadlines 10 to 20 s away.
func DefaultConfig() Config {
	return Config{
		URL:            "http://127.0.0.1:8080",
		Tasks:          DefaultTasks,
		Users:          DefaultUsers,
		Concurrency:    DefaultConcurrency,
		FailShare:      DefaultFailShare,
		DeadlineSpread: DefaultDeadlineSpread,
		Timeout:        DefaultTimeout,
		Grace:          DefaultGrace,
		ChatsPerUser:   DefaultChatsPerUser,
	}.Normalize()
}

// Normalize returns c with defaults in place of zero values and the URL without a
// trailing slash.
func (c Config) Normalize() Config {
	c.URL = strings.TrimRight(strings.TrimSpace(c.URL), "/")
	if c.Tasks == 0 {
		c.Tasks = DefaultTasks
	}
	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.DeadlineSpread == 0 {
		c.DeadlineSpread = DefaultDeadlineSpread
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.GetEvery == 0 {
		c.GetEvery = DefaultGetEvery
	}
	if c.VerifyWorkflows == 0 {
		c.VerifyWorkflows = DefaultVerifyWorkflows
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 5 * time.Second
	}
	return c
}

// Validate reports every field out of range at once.
func (c Config) Validate() error {
	var problems []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Errorf("url %q is not an http:// or https:// URL with a host", c.URL))
	}
	if c.Tasks < 1 || c.Tasks > 10_000_000 {
		problems = append(problems, fmt.Errorf("tasks %d is not between 1 and 10000000", c.Tasks))
	}
	if c.Users < 1 || c.Users > 1_000_000 {
		problems = append(problems, fmt.Errorf("users %d is not between 1 and 1000000", c.Users))
	}
	if c.Concurrency < 1 || c.Concurrency > 10_000 {
		problems = append(problems, fmt.Errorf("concurrency %d is not between 1 and 10000", c.Concurrency))
	}
	if !(c.FailShare >= 0 && c.FailShare < 1) {
		problems = append(problems, fmt.Errorf("fail-share %v is not in [0, 1)", c.FailShare))
	}
	if c.DeadlineSpread < time.Second {
		problems = append(problems, fmt.Errorf("deadline-spread %v is under 1s", c.DeadlineSpread))
	}
	if c.Timeout < time.Second {
		problems = append(problems, fmt.Errorf("timeout %v is under 1s", c.Timeout))
	}
	if c.Grace < 0 {
		problems = append(problems, errors.New("grace must not be negative"))
	}
	if c.ChatsPerUser < 0 || c.ChatsPerUser > 1000 {
		problems = append(problems, fmt.Errorf("chats per user %d is not between 0 and 1000", c.ChatsPerUser))
	}
	if c.GetEvery < 1 {
		problems = append(problems, fmt.Errorf("get sample rate 1 in %d is not at least 1", c.GetEvery))
	}
	if c.VerifyWorkflows < 0 {
		problems = append(problems, errors.New("verify-workflows must not be negative"))
	}
	if c.RequestTimeout <= 0 {
		problems = append(problems, errors.New("request timeout must be positive"))
	}
	if c.RunID != "" && !validRunID(c.RunID) {
		problems = append(problems, fmt.Errorf("run id %q must be 1 to 32 letters or digits", c.RunID))
	}
	return errors.Join(problems...)
}

func validRunID(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// User returns the name of user i (0-based) of users: "user-007@example.com" for
// i == 6, with at least three digits.
func User(i, users int) string {
	width := max(3, len(strconv.Itoa(users)))
	return fmt.Sprintf("user-%0*d@example.com", width, i+1)
}

// FailingUsers is how many of users have failing notifications at share: the last
// ceil(share*users) of them (a hair of tolerance, so 0.05*100 is 5, not 6).
func FailingUsers(users int, share float64) int {
	if share <= 0 || users <= 0 {
		return 0
	}
	n := int(math.Ceil(share*float64(users) - 1e-9))
	return min(max(n, 0), users)
}

// FailAssignees lists the users whose notifications the server must fail: the last
// FailingUsers(users, share) of them, in order. The server gets them as
// TASKAGENT_NOTIFY_FAIL_ASSIGNEES, joined by commas (FailAssigneesEnv).
func FailAssignees(users int, share float64) []string {
	n := FailingUsers(users, share)
	out := make([]string, 0, n)
	for i := users - n; i < users; i++ {
		out = append(out, User(i, users))
	}
	return out
}

// FailAssigneesEnv is the value of TASKAGENT_NOTIFY_FAIL_ASSIGNEES that a server
// under a bench with users and share must be started with.
func FailAssigneesEnv(users int, share float64) string {
	return strings.Join(FailAssignees(users, share), ",")
}

// EnvFailAssignees is the server's environment variable that lists the assignees
// whose notifications always fail.
const EnvFailAssignees = "TASKAGENT_NOTIFY_FAIL_ASSIGNEES"
