//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/runtime/dapr"
	"github.com/taskagent/taskagent/internal/runtime/dapr/daprtest"
)

// Tokens the sidecars and apps of the end-to-end cluster use both ways, so
// that the test covers the authenticated protocol a deployment runs.
const (
	e2eDaprAPIToken = "e2e-dapr-api-token"
	e2eAppAPIToken  = "e2e-app-api-token"
)

// daprStartTimeout bounds each wait of a cluster's start-up: an app to log that
// it serves, a sidecar to reach its app, placement to list every replica.
const daprStartTimeout = 60 * time.Second

// daprCluster is Redis, placement, the Scheduler service (which keeps the
// reminders, as deploy/ configures Dapr) and replicas of "taskagent serve
// --runtime dapr", each beside its own daprd of app id dapr.AppID, all on
// loopback and all stopped when the test ends.
type daprCluster struct {
	tools     daprtest.Tools
	redis     *daprtest.Redis
	placement *daprtest.Placement
	scheduler *daprtest.Scheduler
	res       daprtest.Resources
	replicas  []*daprReplica
}

// daprReplica is one taskagent process and its sidecar.
type daprReplica struct {
	name    string
	app     *process
	sidecar *daprtest.Sidecar
}

// startDaprCluster starts n replicas with env added to every app's environment,
// and waits until every app is ready, every sidecar healthy, placement lists n
// hosts of TaskActor, and every sidecar has the table that says so.
func startDaprCluster(t *testing.T, n int, env ...string) *daprCluster {
	t.Helper()
	c := &daprCluster{tools: daprtest.FindTools(t)}
	c.redis = daprtest.StartRedis(t)
	c.placement = daprtest.StartPlacement(t, c.tools)
	c.scheduler = daprtest.StartScheduler(t, c.tools)
	c.res = daprtest.WriteComponents(t, c.redis.Addr, daprtest.SchedulerReminders)
	for i := range n {
		c.replicas = append(c.replicas, c.startReplica(t, "replica-"+strconv.Itoa(i+1), env))
	}
	for _, r := range c.replicas {
		r.waitReady(t)
		r.sidecar.WaitHealthy(t, daprStartTimeout)
	}
	c.placement.WaitHosts(t, actors.TaskActorType, n, daprStartTimeout)
	c.waitTables(t)
	return c
}

// tablesUpdated is what daprd logs when it applies a placement table.
var tablesUpdated = regexp.MustCompile(`Placement tables updated, version: (\d+)`)

// waitTables waits until every sidecar has applied placement's current table.
// Placement lists a host as soon as it connects, but sends the new table to
// the sidecars in its next round, a second or more later, and a busy sidecar
// applies it later still; until then the sidecars disagree on where actors
// live, and a reminder created meanwhile may fire on a sidecar that no longer
// hosts its actor ("actor is not locally hosted"), stalling a workflow until
// Dapr retries it a minute later. daprd tells the version it applied only in
// its log.
func (c *daprCluster) waitTables(t *testing.T) {
	t.Helper()
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/placement/state", c.placement.HealthzPort))
	if err != nil {
		t.Fatalf("placement state: %v", err)
	}
	var state struct {
		TableVersion int `json:"tableVersion"`
	}
	err = json.NewDecoder(res.Body).Decode(&state)
	res.Body.Close()
	if err != nil || state.TableVersion == 0 {
		t.Fatalf("placement state: version %d, %v", state.TableVersion, err)
	}
	for _, r := range c.replicas {
		r.app.waitFor(daprStartTimeout, fmt.Sprintf("%s's sidecar to apply placement table %d", r.name, state.TableVersion), func() bool {
			applied := 0
			for _, m := range tablesUpdated.FindAllStringSubmatch(r.sidecar.Logs(), -1) {
				if v, _ := strconv.Atoi(m[1]); v > applied {
					applied = v
				}
			}
			return applied >= state.TableVersion
		})
	}
}

// startReplica starts a daprd for an app port, then the app on that port with
// the sidecar's ports. The port is picked free and released before daprd
// starts (daprd probes it until the app listens); in the rare case that
// something else took it meanwhile, the replica starts again on another.
func (c *daprCluster) startReplica(t *testing.T, name string, env []string) *daprReplica {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		sc := daprtest.StartSidecar(t, c.tools, daprtest.SidecarOptions{
			AppID:         dapr.AppID,
			AppPort:       port,
			PlacementAddr: c.placement.Addr,
			SchedulerAddr: c.scheduler.Addr,
			ResourcesDir:  c.res.Dir,
			Config:        c.res.Config,
			Env:           map[string]string{"DAPR_API_TOKEN": e2eDaprAPIToken, "APP_API_TOKEN": e2eAppAPIToken},
		})
		app, err := startDaprApp(t, name, port, sc, env)
		if err == nil {
			return &daprReplica{name: name, app: app, sidecar: sc}
		}
		sc.Kill()
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: port %d was taken, retrying with another", name, port)
	}
}

var errPortTaken = errors.New("address already in use")

// startDaprApp runs "taskagent serve --runtime dapr" on 127.0.0.1:port beside
// sc and waits until it logs that it serves (not until it is ready: see
// waitReady). The process is killed when the test ends; its log is printed if
// the test failed.
func startDaprApp(t *testing.T, name string, port int, sc *daprtest.Sidecar, env []string) (*process, error) {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--runtime", "dapr",
		"--addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		"--data-dir", t.TempDir(), "--log-format", "json")
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env,
		"DAPR_HTTP_PORT="+strconv.Itoa(sc.HTTPPort),
		"DAPR_GRPC_PORT="+strconv.Itoa(sc.GRPCPort),
		"DAPR_API_TOKEN="+e2eDaprAPIToken,
		"APP_API_TOKEN="+e2eAppAPIToken,
	)
	// No app outlives the test binary, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{t: t, cmd: cmd, logs: &logBuffer{}}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			// The polls' request lines would bury the rest.
			var b strings.Builder
			for _, line := range strings.SplitAfter(p.logs.String(), "\n") {
				if !strings.Contains(line, `"msg":"request"`) || !strings.Contains(line, `"status":200`) {
					b.WriteString(line)
				}
			}
			logs := b.String()
			if len(logs) > 64<<10 {
				logs = "[...]" + logs[len(logs)-64<<10:]
			}
			t.Logf("log of %s (taskagent, port %d):\n%s", name, port, logs)
		}
	})

	addr := watchLogs(stderr, p.logs)
	select {
	case a, ok := <-addr:
		if !ok {
			p.kill()
			if strings.Contains(p.logs.String(), "address already in use") {
				return nil, errPortTaken
			}
			return nil, fmt.Errorf("taskagent exited before serving (%v):\n%s", cmd.ProcessState, p.logs)
		}
		p.base = "http://" + a
		return p, nil
	case <-time.After(daprStartTimeout):
		p.kill()
		return nil, fmt.Errorf("taskagent did not serve within %v:\n%s", daprStartTimeout, p.logs)
	}
}

// waitReady waits until the app's /readyz answers 200: its sidecar is up with
// its components loaded and the app is connected to daprd's workflow engine.
func (r *daprReplica) waitReady(t *testing.T) {
	t.Helper()
	r.app.waitFor(daprStartTimeout, r.name+" to be ready", func() bool {
		res, err := http.Get(r.app.base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// kill ends the replica as a crash would: SIGKILL to the app and to its daprd,
// with no deactivation and no goodbye to placement.
func (r *daprReplica) kill() {
	r.app.kill()
	r.sidecar.Kill()
}

// freePort returns a port that was free on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// logRecords returns the app's JSON log records whose msg is msg.
func (p *process) logRecords(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(p.logs.String(), "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// get reads path as JSON and returns the status and the decoded body; a
// transport error is status 0 (the replica may be down or not ready).
func (p *process) get(path string) (int, map[string]any) {
	res, err := http.Get(p.base + path)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}
