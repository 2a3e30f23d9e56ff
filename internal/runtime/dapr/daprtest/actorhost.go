package daprtest

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// ActorHost is one daprd for an app that hosts actors in the test process,
// with what daprd needs for them: Redis (state store and pub/sub), placement,
// and with SchedulerReminders the scheduler (nil otherwise).
type ActorHost struct {
	Redis     *Redis
	Placement *Placement
	Scheduler *Scheduler
	Sidecar   *Sidecar
	// App is the app's listener. It exists before daprd starts, which needs
	// its port; daprd's first calls wait in its backlog until Serve.
	App net.Listener
}

// StartActorHost starts Redis, placement, the scheduler when reminders asks
// for it, the components and daprd for appID. Everything stops when the test
// ends.
func StartActorHost(t testing.TB, appID string, reminders Reminders) *ActorHost {
	t.Helper()
	tools := FindTools(t)
	h := &ActorHost{Redis: StartRedis(t), Placement: StartPlacement(t, tools)}
	res := WriteComponents(t, h.Redis.Addr, reminders)
	var schedulerAddr string
	if reminders == SchedulerReminders {
		h.Scheduler = StartScheduler(t, tools)
		schedulerAddr = h.Scheduler.Addr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.App = ln
	h.Sidecar = StartSidecar(t, tools, SidecarOptions{
		AppID:         appID,
		AppPort:       ln.Addr().(*net.TCPAddr).Port,
		PlacementAddr: h.Placement.Addr,
		SchedulerAddr: schedulerAddr,
		ResourcesDir:  res.Dir,
		Config:        res.Config,
	})
	return h
}

// Serve serves app on App until the test ends, and waits until daprd is
// healthy and placement lists actorType on it.
func (h *ActorHost) Serve(t testing.TB, app http.Handler, actorType string) {
	t.Helper()
	srv := &http.Server{Handler: app}
	go srv.Serve(h.App)
	t.Cleanup(func() { srv.Close() })
	h.Sidecar.WaitHealthy(t, 60*time.Second)
	h.Placement.WaitHosts(t, actorType, 1, 60*time.Second)
}
