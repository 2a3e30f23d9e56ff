package daprtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// startAttempts bounds how often a start is retried when a port picked as
	// free was taken by someone else before the process bound it.
	startAttempts = 3
	// stopTimeout is how long Stop waits after SIGTERM before it kills.
	stopTimeout = 15 * time.Second
	// pollInterval is how often readiness probes are repeated.
	pollInterval = 25 * time.Millisecond
	// logLimit bounds the output kept per process; older output is dropped.
	logLimit = 1 << 20
	// logPrintLimit bounds the output printed when a test fails.
	logPrintLimit = 128 << 10
)

// process is a started program whose output is kept in memory.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{} // closed once the process has exited and been reaped

	stopOnce sync.Once
}

// startProcess starts path with args in dir, with the parent's environment
// minus Dapr's variables, plus env.
func startProcess(name, dir string, env map[string]string, path string, args ...string) (*process, error) {
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = childEnv(env)
	out := &logBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = 5 * time.Second
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// childEnv is the test's environment without variables that would change how
// a Dapr process runs (DAPR_*, APP_API_TOKEN, POD_NAME, NAMESPACE), plus env.
func childEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "DAPR_"), k == "APP_API_TOKEN", k == "POD_NAME", k == "NAMESPACE":
			continue
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

// waitReady polls ready until it returns nil, the process exits or timeout
// passes.
func (p *process) waitReady(timeout time.Duration, ready func() error) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v)", p.name, p.cmd.ProcessState)
		case <-deadline.C:
			return fmt.Errorf("%s not ready after %v: %w", p.name, timeout, err)
		case <-tick.C:
		}
	}
}

// portTaken reports whether the process exited because a port was in use.
func (p *process) portTaken() bool {
	select {
	case <-p.done:
	default:
		return false
	}
	return strings.Contains(strings.ToLower(p.out.String()), "address already in use")
}

// Stop sends SIGTERM and waits for the process to exit, killing it after
// stopTimeout. It is safe to call more than once and after the process exited.
func (p *process) Stop() {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// Kill sends SIGKILL and waits for the process to be reaped: a crash, with no
// graceful shutdown.
func (p *process) Kill() {
	p.stopOnce.Do(func() {})
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Exited is closed once the process has exited.
func (p *process) Exited() <-chan struct{} { return p.done }

// PID is the process id.
func (p *process) PID() int { return p.cmd.Process.Pid }

// Logs returns the process's output so far.
func (p *process) Logs() string { return p.out.String() }

// cleanup registers stopping the process at the end of the test and printing
// its output when the test failed.
func (p *process) cleanup(t testing.TB) {
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			p.logTo(t)
		}
	})
}

func (p *process) logTo(t testing.TB) {
	out := p.out.String()
	if len(out) > logPrintLimit {
		out = "[...]" + out[len(out)-logPrintLimit:]
	}
	t.Logf("output of %s (%s):\n%s", p.name, strings.Join(p.cmd.Args, " "), out)
}

// start starts a process with ports from freePorts and waits until it is
// ready, retrying with new ports when one was taken meanwhile. It fails the
// test when the process does not become ready.
func start(t testing.TB, name string, nports int, timeout time.Duration,
	launch func(ports []int) (*process, error), ready func(p *process, ports []int) error,
) (*process, []int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ports := freePorts(t, nports)
		p, err := launch(ports)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		err = p.waitReady(timeout, func() error { return ready(p, ports) })
		if err == nil {
			p.cleanup(t)
			return p, ports
		}
		p.Kill()
		if p.portTaken() && attempt < startAttempts {
			t.Logf("%s: a port was taken, retrying with others", name)
			continue
		}
		p.logTo(t)
		t.Fatalf("%s: %v", name, err)
	}
}

// freePorts returns n distinct ports that were free on 127.0.0.1. Holding all
// listeners until every port is picked keeps the ports distinct.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// logBuffer keeps the last logLimit bytes written to it; it is safe for
// concurrent use.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	dropped bool
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - logLimit; over > 0 {
		b.buf.Next(over)
		b.dropped = true
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped {
		return "[...]" + b.buf.String()
	}
	return b.buf.String()
}
