package daprtest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/taskagent/taskagent/internal/runtime/dapr/daprtest"
)

const (
	apiToken = "test-dapr-api-token"
	appToken = "test-app-api-token"
)

// TestSidecars runs Redis, placement, the scheduler and two daprd of one app
// id, each beside a stand-in app that hosts no actors and subscribes to a
// topic. It checks the state store through the sidecar's HTTP API, that an
// event published once reaches both replicas, that API tokens work both ways,
// that daprd runs with the SchedulerReminders feature, and that every process
// listens on loopback only.
func TestSidecars(t *testing.T) {
	tools := daprtest.FindTools(t)
	redis := daprtest.StartRedis(t)
	placement := daprtest.StartPlacement(t, tools)
	scheduler := daprtest.StartScheduler(t, tools)
	res := daprtest.WriteComponents(t, redis.Addr, daprtest.SchedulerReminders)

	var sidecars []*daprtest.Sidecar
	var events []chan []byte
	for range 2 {
		ev := make(chan []byte, 10)
		app := startApp(t, ev)
		sc := daprtest.StartSidecar(t, tools, daprtest.SidecarOptions{
			AppID:         "taskagent",
			AppPort:       app,
			PlacementAddr: placement.Addr,
			SchedulerAddr: scheduler.Addr,
			ResourcesDir:  res.Dir,
			Config:        res.Config,
			Env:           map[string]string{"DAPR_API_TOKEN": apiToken, "APP_API_TOKEN": appToken},
		})
		sidecars = append(sidecars, sc)
		events = append(events, ev)
	}
	for _, sc := range sidecars {
		sc.WaitHealthy(t, 30*time.Second)
	}
	sc := sidecars[0]

	call(t, sc, "POST", "/v1.0/state/statestore", []map[string]any{{"key": "k1", "value": map[string]any{"n": 1}}}, 204)
	if got := call(t, sidecars[1], "GET", "/v1.0/state/statestore/k1", nil, 200); string(got) != `{"n":1}` {
		t.Errorf("state k1: got %s, want {\"n\":1}", got)
	}
	call(t, sc, "GET", "/v1.0/state/statestore/missing", nil, 204)
	var md struct {
		EnabledFeatures []string `json:"enabledFeatures"`
	}
	if err := json.Unmarshal(call(t, sc, "GET", "/v1.0/metadata", nil, 200), &md); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(md.EnabledFeatures, "SchedulerReminders") {
		t.Errorf("daprd's enabled features are %q, want SchedulerReminders among them", md.EnabledFeatures)
	}

	call(t, sc, "POST", "/v1.0/publish/pubsub/topic", map[string]any{"hello": "world"}, 204)
	for i, ev := range events {
		select {
		case body := <-ev:
			var ce struct {
				Topic string            `json:"topic"`
				Data  map[string]string `json:"data"`
			}
			if err := json.Unmarshal(body, &ce); err != nil {
				t.Fatalf("replica %d: event %s: %v", i, body, err)
			}
			if ce.Topic != "topic" || ce.Data["hello"] != "world" {
				t.Errorf("replica %d: event %s, want topic \"topic\" and data {\"hello\":\"world\"}", i, body)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("replica %d: published event not delivered within 10s", i)
		}
	}

	req, err := http.NewRequest("GET", sc.HTTPURL()+"/v1.0/state/statestore/k1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("state without dapr-api-token: status %d, want %d", resp.StatusCode, http.StatusUnauthorized)
	}

	checkLoopbackOnly(t, "redis-server", redis.PID())
	checkLoopbackOnly(t, "placement", placement.PID())
	checkLoopbackOnly(t, "scheduler", scheduler.PID())
	for _, sc := range sidecars {
		checkLoopbackOnly(t, "daprd", sc.PID())
	}
}

// startApp serves the app side of Dapr for an app with no actors that
// subscribes to "topic" of the pub/sub, sending the events it receives to
// events, and returns its port.
func startApp(t *testing.T, events chan<- []byte) int {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("dapr-api-token"); got != appToken {
			t.Errorf("%s %s: dapr-api-token %q, want %q", r.Method, r.URL.Path, got, appToken)
		}
		switch r.Method + " " + r.URL.Path {
		case "GET /dapr/config":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"entities":[]}`)
		case "GET /dapr/subscribe":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `[{"pubsubname":"pubsub","topic":"topic","route":"/events"}]`)
		case "POST /events":
			body, _ := io.ReadAll(r.Body)
			events <- body
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"status":"SUCCESS"}`)
		case "GET /healthz":
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(app.Close)
	return app.Listener.Addr().(*net.TCPAddr).Port
}

// call sends body as JSON to the sidecar's HTTP API with the API token and
// returns the answer, failing the test unless its status is want.
func call(t *testing.T, sc *daprtest.Sidecar, method, path string, body any, want int) []byte {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, sc.HTTPURL()+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("dapr-api-token", apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d (%s), want %d", method, path, resp.StatusCode, got, want)
	}
	return got
}
