package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	commonapi "github.com/dapr/dapr/pkg/apis/common"
	componentsapi "github.com/dapr/dapr/pkg/apis/components/v1alpha1"
	configurationapi "github.com/dapr/dapr/pkg/apis/configuration/v1alpha1"
	resiliencyapi "github.com/dapr/dapr/pkg/apis/resiliency/v1alpha1"
	"github.com/google/go-cmp/cmp"
	"github.com/taskagent/taskagent/internal/actors"
	"github.com/taskagent/taskagent/internal/httpapi"
	"github.com/taskagent/taskagent/internal/runtime/dapr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// theFacts gathers what the code and the Dockerfile say.
func theFacts(t *testing.T) facts {
	t.Helper()
	config := filepath.Join(repoRoot, "cmd", "taskagent", "config.go")
	addr, err := defaultAddr(config)
	if err != nil {
		t.Fatal(err)
	}
	settings, err := settingsEnv(config)
	if err != nil {
		t.Fatal(err)
	}
	return facts{
		appID:       dapr.AppID,
		appPort:     dapr.AppPort,
		defaultAddr: addr,
		settings:    settings,
		stateStore:  dapr.StateStore,
		pubSub:      dapr.PubSub,
		actorTypes:  []string{actors.TaskActorType, actors.ChatActorType},
		image:       theImage(t),
	}
}

// TestManifestFilesDecodeStrictly decodes every YAML file under deploy/k8s,
// kustomization files included, into its API type; an unknown field fails.
func TestManifestFilesDecodeStrictly(t *testing.T) {
	for _, file := range manifestFiles(t) {
		t.Run(filepath.ToSlash(strings.TrimPrefix(file, k8sDir+string(filepath.Separator))), func(t *testing.T) {
			m, err := decodeAll(file, []byte(readFile(t, file)))
			if err != nil {
				t.Fatal(err)
			}
			if len(m) == 0 {
				t.Fatal("no manifest in the file")
			}
		})
	}
}

// TestKustomizeRenders renders the base and every overlay and decodes the output
// strictly: what kubectl apply -k would send.
func TestKustomizeRenders(t *testing.T) {
	wantBase := []string{
		"ServiceAccount/taskagent", "Deployment/taskagent", "Service/taskagent", "PodDisruptionBudget/taskagent",
		"StatefulSet/redis", "Service/redis",
		"Component/" + dapr.StateStore, "Component/" + dapr.PubSub, "Configuration/taskagent", "Resiliency/taskagent",
	}
	wantLocal := append(slices.Clone(wantBase),
		"Namespace/taskagent", "Deployment/zipkin", "Service/zipkin",
		"Secret/redis-auth", "Secret/taskagent-dapr-api-token", "Secret/taskagent-app-api-token")
	for _, tc := range []struct {
		dir       string
		want      []string
		namespace string
	}{
		{baseDir, wantBase, ""},
		{localDir, wantLocal, "taskagent"},
	} {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			m := mustRender(t, tc.dir)
			var got []string
			for _, o := range m {
				got = append(got, o.kind+"/"+o.name)
				if o.kind != "Namespace" && o.namespace != tc.namespace {
					t.Errorf("%s is in namespace %q, want %q", o, o.namespace, tc.namespace)
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("rendered objects (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKubectlKustomizeAgrees renders with kubectl too, when it is installed,
// and wants the same objects as the Go API renders.
func TestKubectlKustomizeAgrees(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed; TestKustomizeRenders rendered with kustomize's Go API, which kubectl kustomize embeds")
	}
	for _, dir := range renderDirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, kubectl, "kustomize", dir).Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, ee.Stderr)
				}
				t.Fatalf("kubectl kustomize %s: %v", dir, err)
			}
			viaKubectl, err := decodeAll("kubectl kustomize "+dir, out)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(generic(t, mustRender(t, dir)), generic(t, viaKubectl)); diff != "" {
				t.Errorf("kustomize's Go API and kubectl kustomize differ (-go +kubectl):\n%s", diff)
			}
		})
	}
}

// generic turns decoded objects into comparable JSON values keyed by kind,
// namespace and name.
func generic(t *testing.T, m manifests) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, o := range m {
		b, err := json.Marshal(o.obj)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		out[o.kind+" "+o.namespace+"/"+o.name] = v
	}
	return out
}

// TestCrossChecks checks that the rendered manifests agree with the code and
// with each other.
func TestCrossChecks(t *testing.T) {
	f := theFacts(t)
	base, local := mustRender(t, baseDir), mustRender(t, localDir)
	both := []struct {
		name  string
		check func(manifests, facts) error
	}{
		{"dapr app id and port", checkDaprApp},
		{"app settings", checkAppEnv},
		{"probes", checkProbes},
		{"dapr components", checkComponents},
		{"resources and limits", func(m manifests, _ facts) error { return checkResources(m) }},
		{"security", checkSecurity},
		{"dapr annotations", func(m manifests, _ facts) error { return checkDaprAnnotations(m) }},
		{"dapr sidecar injection", checkSidecar},
		{"resiliency", checkResiliency},
		{"selectors", func(m manifests, _ facts) error { return checkSelectors(m) }},
		{"redis", func(m manifests, _ facts) error { return checkRedis(m) }},
		{"configuration", func(m manifests, _ facts) error { return checkConfiguration(m, false) }},
	}
	for _, r := range []struct {
		name string
		m    manifests
	}{{"base", base}, {"local", local}} {
		for _, c := range both {
			t.Run(r.name+"/"+c.name, func(t *testing.T) {
				if err := c.check(r.m, f); err != nil {
					t.Error(err)
				}
			})
		}
	}
	// Only the overlay is complete: it has the Secrets and the Zipkin.
	t.Run("local/secrets", func(t *testing.T) {
		if err := checkSecretRefs(local); err != nil {
			t.Error(err)
		}
	})
	t.Run("local/tracing to zipkin", func(t *testing.T) {
		if err := checkConfiguration(local, true); err != nil {
			t.Error(err)
		}
	})
	t.Run("base/no secrets", func(t *testing.T) {
		if s := base.all("Secret"); len(s) > 0 {
			t.Errorf("the base defines Secrets %v; overlays provide them", s)
		}
	})
}

// TestProbeRoutes serves the app's real router and asks the probes' paths.
func TestProbeRoutes(t *testing.T) {
	m := mustRender(t, localDir)
	_, c, err := app(m)
	if err != nil {
		t.Fatal(err)
	}
	notReady := errors.New("sidecar not reachable")
	var ready error
	srv := httptest.NewServer(httpapi.New(httpapi.Config{
		Tasks: stubTasks{}, Chats: stubChats{}, Events: stubEvents{},
		Ready: func(context.Context) error { return ready },
	}))
	defer srv.Close()
	get := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
		if code := get(p.HTTPGet.Path); code != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", p.HTTPGet.Path, code)
		}
	}
	ready = notReady
	if code := get(c.ReadinessProbe.HTTPGet.Path); code != http.StatusServiceUnavailable {
		t.Errorf("readiness probe %s while not ready: %d, want 503", c.ReadinessProbe.HTTPGet.Path, code)
	}
	if code := get(c.LivenessProbe.HTTPGet.Path); code != http.StatusOK {
		t.Errorf("liveness probe %s while not ready: %d, want 200 (a restart would not help)", c.LivenessProbe.HTTPGet.Path, code)
	}
}

// The probes touch none of the services; calling one panics on the nil
// interface, which fails the test.
type (
	stubTasks  struct{ httpapi.TaskService }
	stubChats  struct{ httpapi.ChatService }
	stubEvents struct{ httpapi.EventLog }
)

// TestStrictDecodingRejects proves the decoder refuses what a server with
// strict validation would: unknown fields, wrong case, duplicate keys, kinds we
// have no type for.
func TestStrictDecodingRejects(t *testing.T) {
	deployment := readFile(t, filepath.Join(baseDir, "taskagent.yaml"))
	components := readFile(t, filepath.Join(baseDir, "dapr-components.yaml"))
	res := readFile(t, filepath.Join(baseDir, "dapr-resiliency.yaml"))
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"unknown field in a Deployment", mutateDoc(t, deployment, "Deployment", func(o map[string]any) {
			o["spec"].(map[string]any)["replica"] = 3
		}), `unknown field "spec.replica"`},
		{"unknown field in a container", mutateDoc(t, deployment, "Deployment", func(o map[string]any) {
			c := o["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
			c["resource"] = c["resources"]
			delete(c, "resources")
		}), `unknown field "spec.template.spec.containers[0].resource"`},
		{"wrong case", mutateDoc(t, deployment, "Deployment", func(o map[string]any) {
			s := o["spec"].(map[string]any)
			s["Replicas"] = s["replicas"]
			delete(s, "replicas")
		}), `unknown field "spec.Replicas"`},
		{"unknown field in a Dapr Component", mutateDoc(t, components, "Component", func(o map[string]any) {
			s := o["spec"].(map[string]any)
			s["metdata"] = s["metadata"]
			delete(s, "metadata")
		}), `unknown field "spec.metdata"`},
		{"scopes misplaced in a Dapr Component", mutateDoc(t, components, "Component", func(o map[string]any) {
			o["spec"].(map[string]any)["scopes"] = o["scopes"]
			delete(o, "scopes")
		}), `unknown field "spec.scopes"`},
		{"unknown field in a Dapr Resiliency", mutateDoc(t, res, "Resiliency", func(o map[string]any) {
			o["spec"].(map[string]any)["policies"].(map[string]any)["retries"].(map[string]any)["actorRetry"].(map[string]any)["maxRetry"] = 5
		}), `unknown field "spec.policies.retries.actorRetry.maxRetry"`},
		{"duplicate key", "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  name: b\n", `"name" already set`},
		{"unknown kind", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n", "no API type known"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeStrict(tc.name, []byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %s", err, tc.want)
			}
		})
	}
}

// mutateDoc finds the document of kind in a YAML stream, changes it as a
// generic map, and returns it as YAML.
func mutateDoc(t *testing.T, stream, kind string, change func(map[string]any)) string {
	t.Helper()
	docs, err := splitYAML([]byte(stream))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		var o map[string]any
		if err := yaml.Unmarshal(d, &o); err != nil {
			t.Fatal(err)
		}
		if o["kind"] == kind {
			if _, err := decodeStrict("unchanged "+kind, d); err != nil {
				t.Fatalf("before the change: %v", err)
			}
			change(o)
			out, err := yaml.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			return string(out)
		}
	}
	t.Fatalf("no %s in the stream", kind)
	return ""
}

// TestCrossChecksCatchMistakes proves each cross-check fails on a mistake made
// in a fresh in-memory copy of the local overlay's render.
func TestCrossChecksCatchMistakes(t *testing.T) {
	f := theFacts(t)
	out, err := render(localDir)
	if err != nil {
		t.Fatal(err)
	}
	fresh := func(t *testing.T) manifests {
		m, err := decodeAll("render", out)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	dep := func(t *testing.T, m manifests) *appsv1.Deployment {
		d, _, err := app(m)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	appContainer := func(t *testing.T, m manifests) *corev1.Container {
		_, c, err := app(m)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name   string
		mutate func(*testing.T, manifests, *facts)
		check  func(manifests, facts) error
		want   string
	}{
		{"app-port annotation", func(t *testing.T, m manifests, _ *facts) {
			dep(t, m).Spec.Template.Annotations[annAppPort] = "8081"
		}, checkDaprApp, "dapr.io/app-port"},
		{"container port", func(t *testing.T, m manifests, _ *facts) {
			appContainer(t, m).Ports[0].ContainerPort = 9090
		}, checkDaprApp, `port "http" is 9090`},
		{"the code's port", func(_ *testing.T, _ manifests, f *facts) {
			f.appPort = 9999
		}, checkDaprApp, "dapr.AppPort is 9999"},
		{"the app's default address", func(_ *testing.T, _ manifests, f *facts) {
			f.defaultAddr = ":8081"
		}, checkDaprApp, `default address ":8081"`},
		{"misspelled setting", func(t *testing.T, m manifests, _ *facts) {
			c := appContainer(t, m)
			c.Env = append(c.Env, corev1.EnvVar{Name: "TASKAGENT_NOTIFY_ATTEMPT", Value: "3"})
		}, checkAppEnv, "TASKAGENT_NOTIFY_ATTEMPT is not a setting"},
		{"app id", func(t *testing.T, m manifests, _ *facts) {
			dep(t, m).Spec.Template.Annotations[annAppID] = "task-agent-system"
		}, checkDaprApp, "dapr.AppID"},
		{"sidecar app port", func(t *testing.T, m manifests, _ *facts) {
			dep(t, m).Spec.Template.Annotations[annAppPort] = "8000"
		}, checkSidecar, "daprd --app-port"},
		{"replicas", func(t *testing.T, m manifests, _ *facts) {
			one := int32(1)
			dep(t, m).Spec.Replicas = &one
		}, checkDaprApp, "1 replicas"},
		{"state store name", func(t *testing.T, m manifests, _ *facts) {
			c, _ := typed[componentsapi.Component](m, "Component", dapr.StateStore)
			c.Name = "redis-state"
		}, checkComponents, `component "statestore"`},
		{"actor state store flag", func(t *testing.T, m manifests, _ *facts) {
			c, _ := typed[componentsapi.Component](m, "Component", dapr.StateStore)
			c.Spec.Metadata = slices.DeleteFunc(c.Spec.Metadata, func(md commonapi.NameValuePair) bool { return md.Name == "actorStateStore" })
		}, checkComponents, "actorStateStore"},
		{"component scope", func(t *testing.T, m manifests, _ *facts) {
			c, _ := typed[componentsapi.Component](m, "Component", dapr.PubSub)
			c.Scopes = []string{"other-app"}
		}, checkComponents, "scopes"},
		{"no cpu limit", func(t *testing.T, m manifests, _ *facts) {
			delete(appContainer(t, m).Resources.Limits, corev1.ResourceCPU)
		}, func(m manifests, _ facts) error { return checkResources(m) }, "no cpu limit"},
		{"zipkin without limits", func(t *testing.T, m manifests, _ *facts) {
			z, _ := typed[appsv1.Deployment](m, "Deployment", "zipkin")
			z.Spec.Template.Spec.Containers[0].Resources.Limits = nil
		}, func(m manifests, _ facts) error { return checkResources(m) }, "Deployment zipkin container zipkin: no cpu limit"},
		{"no sidecar memory limit", func(t *testing.T, m manifests, _ *facts) {
			delete(dep(t, m).Spec.Template.Annotations, annMemoryLimit)
		}, func(m manifests, _ facts) error { return checkResources(m) }, annMemoryLimit},
		{"sidecar limit that Dapr cannot parse", func(t *testing.T, m manifests, _ *facts) {
			dep(t, m).Spec.Template.Annotations[annCPULimit] = "half a core"
		}, checkSidecar, "daprd cpu (dapr.io/sidecar-cpu-limit)"},
		{"GOMEMLIMIT over the limit", func(t *testing.T, m manifests, _ *facts) {
			c := appContainer(t, m)
			for i := range c.Env {
				if c.Env[i].Name == "GOMEMLIMIT" {
					c.Env[i].Value = "1GiB"
				}
			}
		}, func(m manifests, _ facts) error { return checkResources(m) }, "GOMEMLIMIT"},
		{"root user", func(t *testing.T, m manifests, _ *facts) {
			root := int64(0)
			appContainer(t, m).SecurityContext.RunAsUser = &root
		}, checkSecurity, "runAsUser is 0"},
		{"user other than the image's", func(t *testing.T, m manifests, _ *facts) {
			u := int64(1000)
			appContainer(t, m).SecurityContext.RunAsUser = &u
		}, checkSecurity, "differs from the image's user 65532"},
		{"image running as root", func(_ *testing.T, _ manifests, f *facts) {
			f.image.uid = 0
		}, checkSecurity, "the image runs as root"},
		{"writable root filesystem", func(t *testing.T, m manifests, _ *facts) {
			no := false
			appContainer(t, m).SecurityContext.ReadOnlyRootFilesystem = &no
		}, checkSecurity, "readOnlyRootFilesystem"},
		{"unknown dapr annotation", func(t *testing.T, m manifests, _ *facts) {
			dep(t, m).Spec.Template.Annotations["dapr.io/enable-actors"] = "true"
		}, func(m manifests, _ facts) error { return checkDaprAnnotations(m) }, "dapr.io/enable-actors is not one Dapr 1.14 knows"},
		{"unparsable dapr annotation", func(t *testing.T, m manifests, _ *facts) {
			dep(t, m).Spec.Template.Annotations["dapr.io/metrics-port"] = "metrics"
		}, func(m manifests, _ facts) error { return checkDaprAnnotations(m) }, "dapr.io/metrics-port"},
		{"missing secret", func(t *testing.T, m manifests, _ *facts) {
			dep(t, m).Spec.Template.Annotations[annAPIToken] = "no-such-secret"
		}, func(m manifests, _ facts) error { return checkSecretRefs(m) }, `no Secret named "no-such-secret"`},
		{"app and sidecar tokens differ", func(t *testing.T, m manifests, _ *facts) {
			c := appContainer(t, m)
			for i := range c.Env {
				if c.Env[i].Name == "APP_API_TOKEN" {
					c.Env[i].ValueFrom.SecretKeyRef.Name = "redis-auth"
				}
			}
		}, func(m manifests, _ facts) error { return checkSecretRefs(m) }, "APP_API_TOKEN comes from Secret redis-auth"},
		{"resiliency target without its policy", func(t *testing.T, m manifests, _ *facts) {
			r, _ := typed[resiliencyapi.Resiliency](m, "Resiliency", "taskagent")
			a := r.Spec.Targets.Actors[actors.TaskActorType]
			a.Retry = "noSuchRetry"
			r.Spec.Targets.Actors[actors.TaskActorType] = a
		}, checkResiliency, `no retry policy "noSuchRetry"`},
		{"resiliency with an actor type the app does not host", func(t *testing.T, m manifests, _ *facts) {
			r, _ := typed[resiliencyapi.Resiliency](m, "Resiliency", "taskagent")
			r.Spec.Targets.Actors["TaskActorr"] = r.Spec.Targets.Actors[actors.TaskActorType]
			delete(r.Spec.Targets.Actors, actors.TaskActorType)
		}, checkResiliency, "actor targets"},
		{"resiliency Dapr rejects", func(t *testing.T, m manifests, _ *facts) {
			r, _ := typed[resiliencyapi.Resiliency](m, "Resiliency", "taskagent")
			r.Spec.Policies.Timeouts["actorCall"] = "ten seconds"
		}, checkResiliency, "Dapr rejects it"},
		{"circuit breaker trip Dapr cannot compile", func(t *testing.T, m manifests, _ *facts) {
			r, _ := typed[resiliencyapi.Resiliency](m, "Resiliency", "taskagent")
			cb := r.Spec.Policies.CircuitBreakers["actorBreaker"]
			cb.Trip = "consecutiveFailures >"
			r.Spec.Policies.CircuitBreakers["actorBreaker"] = cb
		}, checkResiliency, "Dapr rejects it"},
		{"redis without persistence", func(t *testing.T, m manifests, _ *facts) {
			s, _ := typed[appsv1.StatefulSet](m, "StatefulSet", "redis")
			s.Spec.VolumeClaimTemplates = nil
		}, func(m manifests, _ facts) error { return checkRedis(m) }, "PersistentVolumeClaim"},
		{"component with another password", func(t *testing.T, m manifests, _ *facts) {
			c, _ := typed[componentsapi.Component](m, "Component", dapr.PubSub)
			for i := range c.Spec.Metadata {
				if c.Spec.Metadata[i].Name == "redisPassword" {
					c.Spec.Metadata[i].SecretKeyRef.Key = "pass"
				}
			}
		}, func(m manifests, _ facts) error { return checkRedis(m) }, "redisPassword"},
		{"redis host that is no Service", func(t *testing.T, m manifests, _ *facts) {
			c, _ := typed[componentsapi.Component](m, "Component", dapr.StateStore)
			for i := range c.Spec.Metadata {
				if c.Spec.Metadata[i].Name == "redisHost" {
					c.Spec.Metadata[i].SetValue([]byte(`"redis-master:6379"`))
				}
			}
		}, checkComponents, `no Service named "redis-master"`},
		{"probe on another route", func(t *testing.T, m manifests, _ *facts) {
			appContainer(t, m).ReadinessProbe.HTTPGet.Path = "/health/ready"
		}, checkProbes, "readinessProbe asks /health/ready"},
		{"probe on another port", func(t *testing.T, m manifests, _ *facts) {
			appContainer(t, m).LivenessProbe.HTTPGet.Port = intstr.FromInt32(9090)
		}, checkProbes, "livenessProbe asks port 9090"},
		{"service to another port", func(t *testing.T, m manifests, _ *facts) {
			s, _ := typed[corev1.Service](m, "Service", appName)
			s.Spec.Ports[0].TargetPort = intstr.FromString("metrics")
		}, func(m manifests, _ facts) error { return checkSelectors(m) }, "has no port metrics"},
		{"pdb that blocks every eviction", func(t *testing.T, m manifests, _ *facts) {
			p, _ := typed[policyv1.PodDisruptionBudget](m, "PodDisruptionBudget", appName)
			two := intstr.FromInt32(2)
			p.Spec.MinAvailable = &two
		}, func(m manifests, _ facts) error { return checkSelectors(m) }, "minAvailable"},
		{"mtls off", func(t *testing.T, m manifests, _ *facts) {
			c, _ := typed[configurationapi.Configuration](m, "Configuration", "taskagent")
			off := false
			c.Spec.MTLSSpec.Enabled = &off
		}, func(m manifests, _ facts) error { return checkConfiguration(m, true) }, "mTLS is not enabled"},
		{"reminders in the state store", func(t *testing.T, m manifests, _ *facts) {
			c, _ := typed[configurationapi.Configuration](m, "Configuration", "taskagent")
			off := false
			for i := range c.Spec.Features {
				c.Spec.Features[i].Enabled = &off
			}
		}, func(m manifests, _ facts) error { return checkConfiguration(m, true) }, "feature SchedulerReminders is not enabled"},
		{"no features", func(t *testing.T, m manifests, _ *facts) {
			c, _ := typed[configurationapi.Configuration](m, "Configuration", "taskagent")
			c.Spec.Features = nil
		}, func(m manifests, _ facts) error { return checkConfiguration(m, true) }, "feature SchedulerReminders is not enabled"},
		{"sidecar pointed at another scheduler", func(t *testing.T, m manifests, _ *facts) {
			dep(t, m).Spec.Template.Annotations[annScheduler] = "localhost:50006"
		}, checkSidecar, "DAPR_SCHEDULER_HOST_ADDRESS"},
		{"traces to a Zipkin that is not there", func(t *testing.T, m manifests, _ *facts) {
			c, _ := typed[configurationapi.Configuration](m, "Configuration", "taskagent")
			c.Spec.TracingSpec.Zipkin.EndpointAddresss = "http://jaeger:9411/api/v2/spans"
		}, func(m manifests, _ facts) error { return checkConfiguration(m, true) }, `no Service named "jaeger"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, f := fresh(t), f
			f.image.ports = slices.Clone(f.image.ports)
			if err := tc.check(m, f); err != nil {
				t.Fatalf("before the change: %v", err)
			}
			tc.mutate(t, m, &f)
			err := tc.check(m, f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
