package daprtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// placementReadyTimeout bounds how long StartPlacement waits for healthz; the
// single-node Raft cluster elects itself within a few seconds.
const placementReadyTimeout = 30 * time.Second

// Placement is a single-node Dapr placement service with an in-memory Raft
// log, started for one test.
type Placement struct {
	// Addr is host:port of its gRPC API, for daprd's --placement-host-address.
	Addr        string
	Port        int
	HealthzPort int

	*process // Stop, Kill, Exited, PID, Logs
}

// StartPlacement starts placement on free 127.0.0.1 ports (API, healthz and
// Raft) with TLS and metrics off, and waits until its healthz answers 200,
// which it does once it leads its Raft cluster. It stops when the test ends.
func StartPlacement(t testing.TB, tools Tools) *Placement {
	t.Helper()
	dir := t.TempDir()
	proc, ports := start(t, "placement", 3, placementReadyTimeout,
		func(ports []int) (*process, error) {
			return startProcess("placement", dir, nil, tools.Placement,
				"--port", strconv.Itoa(ports[0]),
				"--listen-address", "127.0.0.1",
				"--healthz-port", strconv.Itoa(ports[1]),
				"--healthz-listen-address", "127.0.0.1",
				"--id", "dapr-placement-0",
				"--initial-cluster", "dapr-placement-0=127.0.0.1:"+strconv.Itoa(ports[2]),
				"--inmem-store-enabled=true",
				"--tls-enabled=false",
				"--enable-metrics=false",
				"--metadata-enabled=true",
				"--log-level", "info",
			)
		},
		healthz(1))
	return &Placement{
		Addr:        net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		Port:        ports[0],
		HealthzPort: ports[1],
		process:     proc,
	}
}

// PlacementHost is one sidecar in placement's table.
type PlacementHost struct {
	Name       string   `json:"name"`
	AppID      string   `json:"appId"`
	ActorTypes []string `json:"actorTypes"`
}

// Hosts returns the sidecars placement knows and the actor types each hosts
// (its /placement/state). A host is in this table before the sidecars have
// received it: daprd learns of new tables up to about a second later.
func (p *Placement) Hosts(ctx context.Context) ([]PlacementHost, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		"http://127.0.0.1:"+strconv.Itoa(p.HealthzPort)+"/placement/state", nil)
	if err != nil {
		return nil, err
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("placement state: %s", res.Status)
	}
	var state struct {
		HostList []PlacementHost `json:"hostList"`
	}
	if err := json.NewDecoder(res.Body).Decode(&state); err != nil {
		return nil, fmt.Errorf("placement state: %w", err)
	}
	return state.HostList, nil
}

// WaitHosts waits until n sidecars host actorType in placement's table, and
// fails the test after timeout.
func (p *Placement) WaitHosts(t testing.TB, actorType string, n int, timeout time.Duration) {
	t.Helper()
	err := poll(timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		hosts, err := p.Hosts(ctx)
		if err != nil {
			return err
		}
		got := 0
		for _, h := range hosts {
			if slices.Contains(h.ActorTypes, actorType) {
				got++
			}
		}
		if got != n {
			return fmt.Errorf("%d hosts of %s, want %d", got, actorType, n)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("placement: %v", err)
	}
}

// healthz is a readiness check for start: the process answers 200 on
// /healthz at ports[i].
func healthz(i int) func(*process, []int) error {
	return func(_ *process, ports []int) error {
		return httpStatus("http://127.0.0.1:"+strconv.Itoa(ports[i])+"/healthz", http.StatusOK)
	}
}

// httpStatus GETs url and reports an error unless it answers want.
func httpStatus(url string, want int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != want {
		return fmt.Errorf("GET %s: %s, want %d", url, res.Status, want)
	}
	return nil
}

// poll calls check until it returns nil or timeout passes, and returns the
// last error then.
func poll(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", timeout, err)
		}
		<-tick.C
	}
}

// httpClient probes the processes; without keep-alives no idle connection to
// a stopped process outlives a test.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
