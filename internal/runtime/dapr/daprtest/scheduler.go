package daprtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// schedulerReadyTimeout bounds how long StartScheduler waits for healthz: the
// embedded etcd elects itself and the gRPC API starts within a few seconds.
const schedulerReadyTimeout = 60 * time.Second

// schedulerID is the scheduler's name in its one-member etcd cluster.
const schedulerID = "dapr-scheduler-server-0"

// Scheduler is a single-node Dapr Scheduler service (an embedded etcd that
// stores jobs, among them actor reminders) started for one test, with its
// data in a temporary directory.
type Scheduler struct {
	// Addr is host:port of its gRPC API, for daprd's --scheduler-host-address.
	Addr        string
	Port        int
	HealthzPort int
	// EtcdPort is the embedded etcd's client port; Jobs reads from it.
	EtcdPort int

	*process // Stop, Kill, Exited, PID, Logs
}

// StartScheduler starts the scheduler on free 127.0.0.1 ports (API, healthz,
// etcd client and etcd peer) with TLS and metrics off and its etcd data in a
// temporary directory, and waits until its healthz answers 200, which it does
// once etcd is ready and the API listens. It stops when the test ends.
func StartScheduler(t testing.TB, tools Tools) *Scheduler {
	t.Helper()
	if tools.Scheduler == "" {
		t.Fatal("daprtest: no scheduler program; run scripts/dapr-tools")
	}
	dir := t.TempDir()
	proc, ports := start(t, "scheduler", 4, schedulerReadyTimeout,
		func(ports []int) (*process, error) {
			return startProcess("scheduler", dir, nil, tools.Scheduler,
				"--mode", "standalone",
				"--port", strconv.Itoa(ports[0]),
				"--listen-address", "127.0.0.1",
				"--healthz-port", strconv.Itoa(ports[1]),
				"--healthz-listen-address", "127.0.0.1",
				"--id", schedulerID,
				// etcd listens for clients and peers on the host of this URL.
				"--initial-cluster", schedulerID+"=http://127.0.0.1:"+strconv.Itoa(ports[3]),
				"--etcd-client-ports", schedulerID+"="+strconv.Itoa(ports[2]),
				"--etcd-data-dir", dir,
				"--tls-enabled=false",
				"--enable-metrics=false",
				"--log-level", "info",
			)
		},
		healthz(1))
	return &Scheduler{
		Addr:        net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		Port:        ports[0],
		HealthzPort: ports[1],
		EtcdPort:    ports[2],
		process:     proc,
	}
}

// Jobs returns the names of the jobs the scheduler stores, in key order. An
// actor reminder is the job
// "actorreminder||<namespace>||<actor type>||<actor id>||<reminder>". It
// reads the keys under "dapr/jobs/" through etcd's JSON gateway on the client
// port.
func (s *Scheduler) Jobs(ctx context.Context) ([]string, error) {
	const prefix = "dapr/jobs/"
	body, err := json.Marshal(map[string]any{
		"key":       []byte(prefix),
		"range_end": []byte(prefix[:len(prefix)-1] + string(rune(prefix[len(prefix)-1]+1))),
		"keys_only": true,
	})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://127.0.0.1:"+strconv.Itoa(s.EtcdPort)+"/v3/kv/range", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scheduler jobs: etcd range: %s", res.Status)
	}
	var out struct {
		KVs []struct {
			Key string `json:"key"` // base64
		} `json:"kvs"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("scheduler jobs: %w", err)
	}
	names := make([]string, 0, len(out.KVs))
	for _, kv := range out.KVs {
		k, err := base64.StdEncoding.DecodeString(kv.Key)
		if err != nil {
			return nil, fmt.Errorf("scheduler jobs: key %q: %w", kv.Key, err)
		}
		names = append(names, string(k[len(prefix):]))
	}
	return names, nil
}
