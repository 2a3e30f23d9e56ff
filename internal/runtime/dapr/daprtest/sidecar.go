package daprtest

import (
	"net"
	"strconv"
	"testing"
	"time"
)

// sidecarReadyTimeout bounds how long StartSidecar waits for daprd's outbound
// health: loading the components (connecting to Redis) takes a second or two.
const sidecarReadyTimeout = 60 * time.Second

// SidecarOptions says how to run one daprd.
type SidecarOptions struct {
	// AppID is the Dapr app id; required.
	AppID string
	// AppPort is the port the app serves Dapr's app protocol on, over HTTP at
	// 127.0.0.1; 0 runs daprd without an app.
	AppPort int
	// PlacementAddr is the placement service's host:port; empty runs daprd
	// without actors (and so without workflows).
	PlacementAddr string
	// SchedulerAddr is the Scheduler service's host:port, for a
	// Configuration that turns on the SchedulerReminders feature (see
	// WriteComponents); empty runs daprd without a scheduler.
	SchedulerAddr string
	// ResourcesDir holds the components (Resources.Dir).
	ResourcesDir string
	// Config is the Configuration file (Resources.Config); empty for none.
	Config string
	// Env is added to daprd's environment, for example DAPR_API_TOKEN (which
	// clients must then send as the dapr-api-token header) and APP_API_TOKEN
	// (which daprd sends to the app as dapr-api-token). Variables named
	// DAPR_* of the test's own environment are not passed on.
	Env map[string]string
	// LogLevel is daprd's --log-level; "info" when empty.
	LogLevel string
	// Args are more daprd flags, for example "--app-max-concurrency=8".
	Args []string
}

// Sidecar is a running daprd in self-hosted mode. All its listeners are on
// 127.0.0.1.
type Sidecar struct {
	AppID string
	// HTTPPort and GRPCPort serve the Dapr API (GRPCPort also serves the
	// workflow API of durabletask-go's client).
	HTTPPort int
	GRPCPort int
	// InternalGRPCPort serves sidecar-to-sidecar calls (actor invocations
	// forwarded to the sidecar hosting the actor).
	InternalGRPCPort int

	*process // Stop, Kill, Exited, PID, Logs
}

// StartSidecar starts daprd with opts on free 127.0.0.1 ports and waits until
// its outbound health (GET /v1.0/healthz/outbound) answers 204: the Dapr API
// is up and the components are loaded. That does not wait for the app: daprd
// reads the app's /dapr/config, and starts actors and subscriptions, once the
// app port accepts connections; see WaitHealthy. daprd stops (SIGTERM) when
// the test ends; its output is printed if the test failed.
func StartSidecar(t testing.TB, tools Tools, opts SidecarOptions) *Sidecar {
	t.Helper()
	if opts.AppID == "" {
		t.Fatal("daprtest: SidecarOptions.AppID is empty")
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	dir := t.TempDir()
	name := "daprd " + opts.AppID
	proc, ports := start(t, name, 5, sidecarReadyTimeout,
		func(ports []int) (*process, error) {
			args := []string{
				"--mode", "standalone",
				"--app-id", opts.AppID,
				"--dapr-listen-addresses", "127.0.0.1",
				"--dapr-http-port", strconv.Itoa(ports[0]),
				"--dapr-grpc-port", strconv.Itoa(ports[1]),
				"--dapr-internal-grpc-listen-address", "127.0.0.1",
				"--dapr-internal-grpc-port", strconv.Itoa(ports[2]),
				// daprd 1.14 ignores --metrics-listen-address and would listen
				// on every interface, so metrics stay off.
				"--enable-metrics=false",
				"--metrics-port", strconv.Itoa(ports[3]),
				"--profile-port", strconv.Itoa(ports[4]),
				"--app-protocol", "http",
				"--app-channel-address", "127.0.0.1",
				"--log-level", opts.LogLevel,
			}
			if opts.AppPort != 0 {
				args = append(args, "--app-port", strconv.Itoa(opts.AppPort))
			}
			if opts.PlacementAddr != "" {
				args = append(args, "--placement-host-address", opts.PlacementAddr)
			}
			if opts.SchedulerAddr != "" {
				args = append(args, "--scheduler-host-address", opts.SchedulerAddr)
			}
			if opts.ResourcesDir != "" {
				args = append(args, "--resources-path", opts.ResourcesDir)
			}
			if opts.Config != "" {
				args = append(args, "--config", opts.Config)
			}
			args = append(args, opts.Args...)
			return startProcess(name, dir, opts.Env, tools.Daprd, args...)
		},
		func(_ *process, ports []int) error {
			return httpStatus("http://127.0.0.1:"+strconv.Itoa(ports[0])+"/v1.0/healthz/outbound", 204)
		})
	return &Sidecar{
		AppID:            opts.AppID,
		HTTPPort:         ports[0],
		GRPCPort:         ports[1],
		InternalGRPCPort: ports[2],
		process:          proc,
	}
}

// HTTPAddr is host:port of the Dapr HTTP API.
func (s *Sidecar) HTTPAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.HTTPPort)) }

// HTTPURL is the base URL of the Dapr HTTP API, without a trailing slash.
func (s *Sidecar) HTTPURL() string { return "http://" + s.HTTPAddr() }

// GRPCAddr is host:port of the Dapr gRPC API.
func (s *Sidecar) GRPCAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.GRPCPort)) }

// WaitHealthy waits until daprd's full health (GET /v1.0/healthz) answers
// 204, which it does once it has reached the app, read its /dapr/config and
// started actors, workflows and subscriptions. It fails the test after
// timeout, or at once if daprd exited.
func (s *Sidecar) WaitHealthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	err := s.waitReady(timeout, func() error {
		return httpStatus(s.HTTPURL()+"/v1.0/healthz", 204)
	})
	if err != nil {
		t.Fatalf("%v", err)
	}
}
