package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the taskagent program built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "taskagent-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "taskagent")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build taskagent:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is one running taskagent.
type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string // http://host:port
	logs *logBuffer
}

// logBuffer collects a process's log lines while tests read them.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs taskagent serve on a free loopback port with dataDir and waits until it
// is ready.
func start(t *testing.T, dataDir string, env ...string) *process {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json")
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, cmd: cmd, logs: &logBuffer{}}
	t.Cleanup(func() { p.kill() })

	addr := watchLogs(stderr, p.logs)
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("taskagent exited before serving")
		}
		p.base = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatalf("taskagent did not start serving within 30s")
	}
	p.waitFor(10*time.Second, "readiness", func() bool {
		res, err := http.Get(p.base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return p
}

// watchLogs copies the JSON log lines of a taskagent's stderr into logs and sends
// the address of its "taskagent serving" line; the channel closes when the
// process's stderr does, so a closed channel without an address means it exited.
func watchLogs(stderr io.Reader, logs io.Writer) <-chan string {
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			logs.Write(append(line, '\n'))
			var rec struct{ Msg, Addr string }
			if !sent && json.Unmarshal(line, &rec) == nil && rec.Msg == "taskagent serving" {
				addr <- rec.Addr
				sent = true
			}
		}
		close(addr)
	}()
	return addr
}

// kill ends the process with SIGKILL: no shutdown code runs.
func (p *process) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

func (p *process) do(method, path string, body any) (int, map[string]any) {
	p.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.base+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func (p *process) waitFor(within time.Duration, what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestDeadlineSurvivesSIGKILL is the seed's success criteria 1 and 2 at process
// level: a task's deadline reminder outlives a SIGKILL of the process and marks the
// task overdue after the restart.
func TestDeadlineSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	code, body := p.do("POST", "/tasks", map[string]any{
		"task_id": "task-001", "title": "Review PR #42",
		"description": "Review the authentication refactoring pull request",
		"assignee":    "alice@example.com", "deadline_seconds": 2,
	})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, body)
	}
	p.kill()

	p2 := start(t, dir)
	code, body = p2.do("GET", "/tasks/task-001", nil)
	if code != http.StatusOK || body["status"] != "assigned" || body["assignee"] != "alice@example.com" {
		t.Fatalf("after restart: %d %v", code, body)
	}
	p2.waitFor(10*time.Second, "the task to become overdue", func() bool {
		_, body = p2.do("GET", "/tasks/task-001", nil)
		return body["status"] == "overdue"
	})
	if body["assignee"] != "alice@example.com" || body["title"] != "Review PR #42" {
		t.Fatalf("overdue task lost data: %v", body)
	}
}

// TestChatHistorySurvivesSIGKILL is the seed's success criterion 3 across a kill.
func TestChatHistorySurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	for _, m := range []string{"hello", "can you help with a task?"} {
		if code, body := p.do("POST", "/chat/user-alice/messages", map[string]any{"content": m}); code != http.StatusOK {
			t.Fatalf("send %q: %d %v", m, code, body)
		}
	}
	p.kill()

	p2 := start(t, dir)
	code, body := p2.do("GET", "/chat/user-alice/history", nil)
	if code != http.StatusOK {
		t.Fatalf("history: %d %v", code, body)
	}
	hist, _ := body["history"].([]any)
	if len(hist) != 4 {
		t.Fatalf("history after restart has %d entries, want 4: %v", len(hist), body)
	}
	first := hist[0].(map[string]any)
	if first["role"] != "user" || first["content"] != "hello" {
		t.Fatalf("first entry = %v", first)
	}
	// The conversation events were committed with the history: both are there.
	res, err := http.Get(p2.base + "/events?topic=conversation-events&after=0")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var page struct{ Events []struct{ Type string } }
	json.NewDecoder(res.Body).Decode(&page)
	if len(page.Events) != 2 || page.Events[0].Type != "conversation.updated" {
		t.Fatalf("conversation events after restart = %+v", page.Events)
	}
}

// TestGracefulShutdown checks that SIGTERM stops the server cleanly.
func TestGracefulShutdown(t *testing.T) {
	p := start(t, t.TempDir())
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGTERM")
	}
	if !strings.Contains(p.logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop in the logs:\n%s", p.logs)
	}
}
