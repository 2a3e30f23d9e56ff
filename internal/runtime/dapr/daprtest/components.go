package daprtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Names the components are written with. They must equal dapr.StateStore and
// dapr.PubSub (this package cannot import dapr; its tests check).
const (
	stateStoreName = "statestore"
	pubSubName     = "pubsub"
)

// Reminders says where daprd keeps actor reminders (the app's own and those
// of Dapr's internal workflow and activity actors).
type Reminders int

const (
	// SchedulerReminders turns on Dapr 1.14's preview feature
	// SchedulerReminders: every reminder is a job of its own in the Scheduler
	// service, so no record grows with the number of reminders. Sidecars need
	// a scheduler (StartScheduler, SidecarOptions.SchedulerAddr). This is what
	// deploy/ ships.
	SchedulerReminders Reminders = iota
	// StateStoreReminders keeps reminders in the actor state store, each
	// actor type's in the records that the app's remindersStoragePartitions
	// asks for (Dapr 1.14's default).
	StateStoreReminders
)

func (r Reminders) String() string {
	if r == StateStoreReminders {
		return "StateStoreReminders"
	}
	return "SchedulerReminders"
}

// Resources is a directory of Dapr components and the Configuration file for
// a sidecar.
type Resources struct {
	// Dir holds the components, for daprd's --resources-path.
	Dir string
	// Config is the Configuration file, for daprd's --config.
	Config string
	// Reminders is where the Configuration tells daprd to keep reminders.
	Reminders Reminders
}

// WriteComponents writes, into a temporary directory, the components
// taskagent uses on Dapr, both on the Redis at redisAddr: the state store
// (state.redis, actorStateStore "true") and the pub/sub (pubsub.redis, with a
// consumer group per sidecar so that every sidecar receives every event),
// the Resiliency that lets reminder writes of several sidecars retry when
// reminders are in the state store (see resiliencyYAML), and a Configuration
// with tracing and mDNS off and the SchedulerReminders feature on or off as
// reminders says.
func WriteComponents(t testing.TB, redisAddr string, reminders Reminders) Resources {
	t.Helper()
	dir := t.TempDir()
	res := Resources{Dir: filepath.Join(dir, "components"), Config: filepath.Join(dir, "config.yaml"), Reminders: reminders}
	files := map[string]string{
		filepath.Join(res.Dir, "statestore.yaml"): stateStoreYAML,
		filepath.Join(res.Dir, "pubsub.yaml"):     pubSubYAML,
		filepath.Join(res.Dir, "resiliency.yaml"): resiliencyYAML,
		res.Config: configYAML,
	}
	if err := os.Mkdir(res.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer("{{redis}}", redisAddr, "{{statestore}}", stateStoreName, "{{pubsub}}", pubSubName,
		"{{scheduler_reminders}}", strconv.FormatBool(reminders == SchedulerReminders))
	for path, text := range files {
		if err := os.WriteFile(path, []byte(r.Replace(text)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return res
}

const stateStoreYAML = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: {{statestore}}
spec:
  type: state.redis
  version: v1
  metadata:
    - name: redisHost
      value: "{{redis}}"
    - name: redisPassword
      value: ""
    - name: actorStateStore
      value: "true"
`

// pubSubYAML gives each sidecar its own consumer group ("{uuid}" is replaced
// by daprd at start-up), so every replica receives every event.
const pubSubYAML = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: {{pubsub}}
spec:
  type: pubsub.redis
  version: v1
  metadata:
    - name: redisHost
      value: "{{redis}}"
    - name: redisPassword
      value: ""
    - name: consumerID
      value: "{uuid}"
    - name: maxLenApprox
      value: "10000"
`

// resiliencyYAML is deploy/dapr/components/resiliency.yaml: it gives Dapr's
// built-in retry of reminder writes the retries Dapr 1.14 leaves out, which
// matters only for StateStoreReminders (the Scheduler service has no shared
// records to conflict on, and Dapr does not use the policy then). Every
// reminder change of an actor type rewrites that type's metadata record in
// Redis under an etag; when two sidecars change reminders of one type at once
// (workflow and activity actors do so at every workflow step), one write
// fails. The built-in policy DaprBuiltInActorReminderRetries would re-read and
// retry, but Dapr 1.14 defines it without maxRetries, which means none: the
// workflow then waits for its one-minute reminder to try again. Defining the
// policy by that name replaces the built-in one. Only policy, duration,
// maxInterval and maxRetries can be set; exponential starts at 500ms.
const resiliencyYAML = `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: taskagent
spec:
  policies:
    retries:
      DaprBuiltInActorReminderRetries:
        policy: exponential
        maxInterval: 5s
        maxRetries: 10
  targets: {}
`

// configYAML turns tracing off, turns the SchedulerReminders feature on or
// off, and replaces the default mDNS name resolution, which listens on UDP
// port 5353 of every interface and announces the app on the network, with the
// kubernetes resolver, which only formats host names and opens no socket. Service invocation by app id does not resolve then;
// taskagent does not use it (actor calls go to the addresses placement hands
// out, pub/sub goes through Redis).
const configYAML = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: daprtest
spec:
  tracing:
    samplingRate: "0"
  nameResolution:
    component: kubernetes
  features:
    - name: SchedulerReminders
      enabled: {{scheduler_reminders}}
`
