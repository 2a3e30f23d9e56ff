package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event types the run follows.
const (
	evCreated     = "task.created"
	evDeadlineSet = "task.deadline_set"
	evOverdue     = "task.overdue"
	evNotified    = "task.notified"
	evUnassigned  = "task.unassigned"
	evConvUpdated = "conversation.updated"
	evConvCleared = "conversation.cleared"
)

// Workflow results, as output.status says them.
const (
	resultCompleted = "completed"
	resultFailed    = "failed"
	resultRejected  = "rejected"
	resultUnknown   = "unknown"
)

// taskState is what the run knows of one task. Guarded by runner.mu.
type taskState struct {
	index    int
	id       string
	user     int
	failing  bool
	seconds  int
	accepted bool
	// acceptedAt is when the 202 came back (monotonic clock).
	acceptedAt time.Time
	workflowID string
	// deadline is the task's deadline by the server's clock, from its
	// task.deadline_set (or task.overdue) event; zero until then.
	deadline time.Time
	overdue  int
	// finish is the event type that finished the workflow (task.notified or
	// task.unassigned); finishedAt is when the run read it.
	finish     string
	finishedAt time.Time
	notified   bool
	unassigned bool
	// afterUnassign is the task as its task.unassigned event showed it.
	afterUnassign taskView
	// result is output.status when the workflow was read back.
	result string
}

// taskView is the part of a task the checks read, in events and GET /tasks/{id}.
type taskView struct {
	ID       string     `json:"task_id"`
	Status   string     `json:"status"`
	Assignee string     `json:"assignee"`
	Deadline *time.Time `json:"deadline"`
}

// eventData is the part of an event's data the run reads, for every type.
type eventData struct {
	TaskID string   `json:"task_id"`
	UserID string   `json:"user_id"`
	Task   taskView `json:"task"`
}

// runner is one run in progress.
type runner struct {
	cfg      Config
	client   *http.Client
	progress io.Writer
	runID    string
	users    []string
	userSet  map[string]bool
	tasks    []*taskState
	byID     map[string]*taskState
	getQueue chan string

	mu              sync.Mutex
	source          string
	submitted       int
	accepted        int
	finished        int
	completed       int // finished by task.notified: the five-activity workflows
	overdueTasks    int
	remindersFired  int
	compensations   int
	chatsSent       int
	throttled       int // 429 answers to POST /tasks/process, each retried
	events          map[string]int
	submitLat       []time.Duration
	chatLat         []time.Duration
	getLat          []time.Duration
	wfLat           []time.Duration
	lateness        []time.Duration
	early           []string
	earlyCount      int
	failures        map[string]int
	failureExamples []string
	status5xx       int
	firstSend       time.Time
	lastFinish      time.Time
	lastCompleted   time.Time
	lastProgress    time.Time
	lastDeadline    time.Time // wall clock: the latest deadline known or expected
}

// Run runs the bench described by cfg against a server and returns what it
// measured. It writes progress to progress (nil discards it). It returns an error
// only when it cannot run at all (a bad config, a server that does not answer, or
// one not started with the failing assignees the run needs); shortfalls are in the
// report, for Report.Check. When ctx is cancelled it stops and returns the report
// of what it did, marked Interrupted.
func Run(ctx context.Context, cfg Config, progress io.Writer) (Report, error) {
	cfg = cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	if progress == nil {
		progress = io.Discard
	}
	r := newRunner(cfg, progress)
	return r.run(ctx)
}

func newRunner(cfg Config, progress io.Writer) *runner {
	runID := cfg.RunID
	if runID == "" {
		var b [4]byte
		rand.Read(b[:])
		runID = hex.EncodeToString(b[:])
	}
	seed := cfg.Seed
	if seed == 0 {
		h := uint64(14695981039346656037) // FNV-1a of the run id
		for _, c := range []byte(runID) {
			h = (h ^ uint64(c)) * 1099511628211
		}
		seed = h
	}
	client := cfg.Client
	if client == nil {
		client = newClient(cfg.Concurrency)
	}
	r := &runner{
		cfg:      cfg,
		client:   client,
		progress: progress,
		runID:    runID,
		userSet:  map[string]bool{},
		byID:     make(map[string]*taskState, cfg.Tasks),
		getQueue: make(chan string, 1024),
		source:   sourceSSE,
		events:   map[string]int{},
		failures: map[string]int{},
	}
	failing := FailingUsers(cfg.Users, cfg.FailShare)
	for i := range cfg.Users {
		u := User(i, cfg.Users)
		r.users = append(r.users, u)
		r.userSet[u] = true
	}
	// Deadlines: whole seconds, uniform in [D, 2D].
	d := max(int(cfg.DeadlineSpread/time.Second), 1)
	rng := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	width := max(5, len(strconv.Itoa(cfg.Tasks)))
	stride := spread(cfg.Users)
	for i := range cfg.Tasks {
		user := i * stride % cfg.Users
		t := &taskState{
			index:   i,
			id:      fmt.Sprintf("bench-%s-%0*d", runID, width, i+1),
			user:    user,
			failing: user >= cfg.Users-failing,
			seconds: d + rng.IntN(d+1),
		}
		r.tasks = append(r.tasks, t)
		r.byID[t.id] = t
	}
	return r
}

// spread returns a stride for dealing tasks to n users: every user gets every
// n-th task, as with round robin, but neighbouring users' tasks lie far apart, so
// the failing users (the last few) are spread through the load rather than
// bunched. It is the number nearest 0.618n that shares no factor with n.
func spread(n int) int {
	if n <= 2 {
		return 1
	}
	gcd := func(a, b int) int {
		for b != 0 {
			a, b = b, a%b
		}
		return a
	}
	s := int(0.618*float64(n) + 0.5)
	for d := 0; ; d++ {
		for _, c := range []int{s - d, s + d} {
			if c >= 1 && c < n && gcd(c, n) == 1 {
				return c
			}
		}
	}
}

func (r *runner) run(ctx context.Context) (Report, error) {
	started := time.Now()
	failAssignees := FailAssignees(r.cfg.Users, r.cfg.FailShare)
	fmt.Fprintf(r.progress, "bench %s: %d tasks across %d users against %s\n", r.runID, r.cfg.Tasks, r.cfg.Users, r.cfg.URL)
	if len(failAssignees) > 0 {
		fmt.Fprintf(r.progress, "the server must run with %s=%s\n", EnvFailAssignees, FailAssigneesEnv(r.cfg.Users, r.cfg.FailShare))
	}
	if err := r.preflight(ctx, failAssignees); err != nil {
		return Report{}, err
	}
	head, err := r.head(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("find the end of the event log: %w", err)
	}

	loadCtx, cancelLoad := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancelLoad()

	// The event stream, read from the log's end before the first request.
	readCtx, stopReading := context.WithCancel(loadCtx)
	defer stopReading()
	cursorc := make(chan int64, 1)
	go func() { cursorc <- r.readEvents(readCtx, head) }()

	// Progress and the GET sampler run until the results are in.
	sideCtx, stopSide := context.WithCancel(loadCtx)
	defer stopSide()
	var side sync.WaitGroup
	side.Go(func() { r.showProgress(sideCtx, started) })
	side.Go(func() { r.sampleGets(sideCtx) })

	r.load(loadCtx)
	r.wait(loadCtx)

	stopSide()
	side.Wait()
	stopReading()
	cursor := <-cursorc

	rep := Report{}
	rep.Interrupted = ctx.Err() != nil
	rep.TimedOut = !rep.Interrupted && loadCtx.Err() != nil

	if !rep.Interrupted {
		// Everything up to now, whatever the stream had not delivered yet.
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		if err := r.drain(dctx, cursor); err != nil && ctx.Err() == nil {
			fmt.Fprintf(r.progress, "reading the last events: %v\n", err)
		}
		cancel()
	}
	verifyAt := time.Now()
	var tv, wv *verification
	if !rep.Interrupted {
		vctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		fmt.Fprintf(r.progress, "verifying tasks and workflows...\n")
		tv = r.verifyTasks(vctx, verifyAt)
		wv = r.verifyWorkflows(vctx)
		cancel()
		rep.Interrupted = ctx.Err() != nil
	}
	// Server figures: asked even after an interrupt, briefly.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	r.serverFigures(sctx, &rep)
	cancel()

	r.fill(&rep, verifyAt, tv, wv)
	rep.StartedAt = started.UTC()
	rep.Elapsed = MillisOf(time.Since(started))
	rep.FailAssignees = failAssignees
	rep.Shortfalls = []string{}
	if err := rep.Check(); err != nil {
		rep.Shortfalls = strings.Split(err.Error(), "\n")
	}
	return rep, nil
}

// preflight checks that the server answers and fails the notifications of exactly
// the run's failing assignees (among the run's users), so that a long run is not
// wasted on a server started with the wrong settings.
func (r *runner) preflight(ctx context.Context, failAssignees []string) error {
	c := r.do(ctx, http.MethodGet, "/healthz", "GET /healthz", nil, 0)
	if c.err != nil {
		return fmt.Errorf("server at %s does not answer: %w", r.cfg.URL, c.err)
	}
	if c.status != http.StatusOK {
		return fmt.Errorf("server at %s: GET /healthz answered %d", r.cfg.URL, c.status)
	}
	c = r.do(ctx, http.MethodGet, "/notifier", "GET /notifier", nil, http.StatusNotFound)
	switch {
	case c.err != nil:
		return fmt.Errorf("GET /notifier: %w", c.err)
	case c.status == http.StatusNotFound:
		fmt.Fprintf(r.progress, "the server has no GET /notifier: cannot check its failing assignees\n")
		return nil
	case c.status != http.StatusOK:
		return fmt.Errorf("GET /notifier answered %d", c.status)
	}
	var st struct {
		FailAssignees []string `json:"fail_assignees"`
		FailureRate   float64  `json:"failure_rate"`
		Breaker       struct {
			State     string     `json:"state"`
			OpenUntil *time.Time `json:"open_until"`
			Failures  int        `json:"failures_to_open"`
		} `json:"breaker"`
	}
	if err := json.Unmarshal(c.body, &st); err != nil {
		return fmt.Errorf("GET /notifier: %w", err)
	}
	var got []string
	for _, a := range st.FailAssignees {
		if r.userSet[a] {
			got = append(got, a)
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(failAssignees))
	var problems []error
	if !slices.Equal(got, want) {
		problems = append(problems, fmt.Errorf("the server fails notifications of %d of this run's users, the run needs %d: start it with %s=%s",
			len(got), len(want), EnvFailAssignees, FailAssigneesEnv(r.cfg.Users, r.cfg.FailShare)))
	}
	if st.FailureRate > 0 {
		problems = append(problems, fmt.Errorf("the server fails %v of all notifications at random, so outcomes cannot be checked: start it without TASKAGENT_NOTIFY_FAILURE_RATE", st.FailureRate))
	}
	if st.Breaker.State == "open" && (st.Breaker.OpenUntil == nil || st.Breaker.OpenUntil.After(time.Now())) {
		until := "a while"
		if st.Breaker.OpenUntil != nil {
			until = st.Breaker.OpenUntil.Format(time.RFC3339)
		}
		problems = append(problems, fmt.Errorf("the notifier's circuit breaker is open until %s: every user's notifications would fail; wait for it to close or restart the server", until))
	}
	if len(problems) == 0 && len(failAssignees) > 0 && st.Breaker.Failures > 0 {
		fmt.Fprintf(r.progress, "note: the failing assignees' notifications count against the server's circuit breaker, which opens after %d failures in a row and then fails every user's notifications (TASKAGENT_NOTIFY_BREAKER_FAILURES sets that number); the checks will show it\n", st.Breaker.Failures)
	}
	return errors.Join(problems...)
}

// job is one request of the load: a task to process, or a chat message.
type job struct {
	task *taskState
	user int // chat message from this user when task is nil
	n    int // which of the user's messages
}

// load sends every task and every chat message through cfg.Concurrency workers,
// chat messages spread evenly among the tasks, until done or ctx ends.
func (r *runner) load(ctx context.Context) {
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				if j.task != nil {
					r.submit(ctx, j.task)
				} else {
					r.chat(ctx, j.user, j.n)
				}
			}
		})
	}
	chats := r.cfg.Users * r.cfg.ChatsPerUser
	next := 0 // the next chat message to send
	send := func(j job) bool {
		select {
		case jobs <- j:
			return true
		case <-ctx.Done():
			return false
		}
	}
feed:
	for i, t := range r.tasks {
		if !send(job{task: t}) {
			break
		}
		// Chat message k goes out after task (k+1)*N/(chats+1): evenly through the load.
		for next < chats && (next+1)*len(r.tasks)/(chats+1) <= i+1 {
			if !send(job{user: next % r.cfg.Users, n: next / r.cfg.Users}) {
				break feed
			}
			next++
		}
	}
	for ; next < chats && ctx.Err() == nil; next++ {
		send(job{user: next % r.cfg.Users, n: next / r.cfg.Users})
	}
	close(jobs)
	wg.Wait()
}

// processRequest is the body of POST /tasks/process.
type processRequest struct {
	TaskID          string `json:"task_id"`
	Title           string `json:"title"`
	Description     string `json:"description"`
	Assignee        string `json:"assignee"`
	DeadlineSeconds int    `json:"deadline_seconds"`
}

func (r *runner) submit(ctx context.Context, t *taskState) {
	user := r.users[t.user]
	req := processRequest{
		TaskID:          t.id,
		Title:           "Bench task " + t.id,
		Description:     fmt.Sprintf("Load test task %s of bench run %s, for %s.", t.id, r.runID, user),
		Assignee:        user,
		DeadlineSeconds: t.seconds,
	}
	r.mu.Lock()
	if r.firstSend.IsZero() {
		r.firstSend = time.Now()
	}
	r.submitted++
	r.mu.Unlock()
	var c call
	for {
		c = r.do(ctx, http.MethodPost, "/tasks/process", "POST /tasks/process", req, http.StatusTooManyRequests)
		if c.err != nil || c.status != http.StatusTooManyRequests {
			break
		}
		// Back-pressure: the server has as many workflows waiting to start
		// as it takes. Send the same request again when it says.
		r.mu.Lock()
		r.throttled++
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.retryAfter):
		}
	}
	if c.err != nil || c.status != http.StatusAccepted {
		return
	}
	now := time.Now()
	var res struct {
		WorkflowID string `json:"workflow_id"`
		Status     string `json:"status"`
	}
	_ = json.Unmarshal(c.body, &res)
	r.mu.Lock()
	defer r.mu.Unlock()
	t.accepted = true
	t.acceptedAt = now
	t.workflowID = res.WorkflowID
	r.accepted++
	r.submitLat = append(r.submitLat, c.dur)
	if t.finish != "" {
		// The stream was faster than the 202: the workflow ended no later than its
		// answer arrived.
		r.wfLat = append(r.wfLat, max(t.finishedAt.Sub(now), 0))
	}
	// Until its deadline_set event says exactly, expect the deadline this far
	// from the answer.
	if t.deadline.IsZero() {
		r.expectDeadline(time.Now().Add(time.Duration(t.seconds) * time.Second))
	}
}

func (r *runner) expectDeadline(d time.Time) {
	if d.After(r.lastDeadline) {
		r.lastDeadline = d
	}
}

func (r *runner) chat(ctx context.Context, user, n int) {
	body := map[string]string{"content": fmt.Sprintf("bench %s: how are my tasks going? (message %d)", r.runID, n+1)}
	c := r.do(ctx, http.MethodPost, "/chat/"+url.PathEscape(r.users[user])+"/messages", "POST /chat/{user}/messages", body, 0)
	if c.err != nil || c.status != http.StatusOK {
		return
	}
	r.mu.Lock()
	r.chatsSent++
	r.chatLat = append(r.chatLat, c.dur)
	r.mu.Unlock()
}

// sampleGets reads back tasks as their task.created events arrive (one in
// cfg.GetEvery), one at a time, for GET latency under load.
func (r *runner) sampleGets(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-r.getQueue:
			c := r.do(ctx, http.MethodGet, "/tasks/"+url.PathEscape(id), "GET /tasks/{id}", nil, 0)
			if c.err == nil && c.status == http.StatusOK {
				r.mu.Lock()
				r.getLat = append(r.getLat, c.dur)
				r.mu.Unlock()
			}
		}
	}
}

// event takes in one event of the log, read at seen.
func (r *runner) event(e wireEvent, seen time.Time) {
	var d eventData
	switch e.Type {
	case evConvUpdated, evConvCleared:
		if json.Unmarshal(e.Data, &d) != nil || !r.userSet[d.UserID] {
			return
		}
		r.mu.Lock()
		r.events[e.Type]++
		r.mu.Unlock()
		return
	}
	if json.Unmarshal(e.Data, &d) != nil {
		return
	}
	t := r.byID[d.TaskID] // read-only after newRunner
	if t == nil {
		return // another run's, or another client's
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events[e.Type]++
	r.lastProgress = seen
	switch e.Type {
	case evCreated:
		if t.index%r.cfg.GetEvery == 0 {
			select {
			case r.getQueue <- t.id:
			default: // the sampler is behind: skip this one
			}
		}
	case evDeadlineSet:
		if d.Task.Deadline != nil {
			t.deadline = *d.Task.Deadline
			r.expectDeadline(t.deadline)
		}
	case evOverdue:
		r.remindersFired++
		t.overdue++
		if t.overdue == 1 {
			r.overdueTasks++
		}
		if d.Task.Deadline != nil {
			if t.deadline.IsZero() {
				t.deadline = *d.Task.Deadline
			}
			late := e.Time.Sub(*d.Task.Deadline)
			r.lateness = append(r.lateness, late)
			if late < 0 {
				r.earlyCount++
				if len(r.early) < maxExamples {
					r.early = append(r.early, fmt.Sprintf("%s fired %v early", t.id, -late))
				}
			}
		}
	case evNotified, evUnassigned:
		if e.Type == evNotified {
			t.notified = true
		} else {
			t.unassigned = true
			t.afterUnassign = d.Task
			r.compensations++
		}
		if t.finish == "" {
			t.finish, t.finishedAt = e.Type, seen
			r.finished++
			r.lastFinish = seen
			if e.Type == evNotified {
				r.completed++
				r.lastCompleted = seen
			}
			if t.accepted {
				r.wfLat = append(r.wfLat, max(seen.Sub(t.acceptedAt), 0))
			}
		}
	}
}

func (r *runner) eventSource() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.source
}

func (r *runner) setEventSource(s string) {
	r.mu.Lock()
	r.source = s
	r.mu.Unlock()
	fmt.Fprintf(r.progress, "the server does not stream events: polling pages\n")
}

// wait lets the run's results come in: it returns once every accepted workflow
// has finished and every task's reminder has fired (and a moment more, to catch a
// reminder firing twice); or once the last deadline and cfg.Grace have passed with
// nothing new for cfg.Grace; or when ctx ends.
func (r *runner) wait(ctx context.Context) {
	settle := min(r.cfg.Grace, time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		done := r.finishedAccepted() >= r.accepted && r.overdueTasks >= r.accepted
		stalled := time.Now().After(r.lastDeadline.Add(r.cfg.Grace)) && time.Since(r.lastProgress) > r.cfg.Grace
		r.mu.Unlock()
		if done {
			sleep(ctx, settle)
			return
		}
		if stalled {
			fmt.Fprintf(r.progress, "nothing new for %v after the last deadline: stopping\n", r.cfg.Grace)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// finishedAccepted counts accepted tasks whose workflow has finished. r.mu is held.
func (r *runner) finishedAccepted() int {
	if r.finished < r.accepted {
		return r.finished // cannot be enough yet; skip the count
	}
	n := 0
	for _, t := range r.tasks {
		if t.accepted && t.finish != "" {
			n++
		}
	}
	return n
}

// serverFigures reads GET /stats and GET /notifier into rep; either may be missing.
func (r *runner) serverFigures(ctx context.Context, rep *Report) {
	if c := r.do(ctx, http.MethodGet, "/stats", "GET /stats", nil, http.StatusNotFound); c.err == nil && c.status == http.StatusOK {
		var st map[string]any
		if json.Unmarshal(c.body, &st) == nil {
			rep.ServerStats = st
			if v, ok := st["rss_bytes"].(float64); ok && v > 0 {
				n := int64(v)
				rep.RSSBytes = &n
			}
		}
	}
	if c := r.do(ctx, http.MethodGet, "/notifier", "GET /notifier", nil, http.StatusNotFound); c.err == nil && c.status == http.StatusOK {
		var st struct {
			Breaker *BreakerStatus `json:"breaker"`
		}
		if json.Unmarshal(c.body, &st) == nil {
			rep.Breaker = st.Breaker
		}
	}
}
