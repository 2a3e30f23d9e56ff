package deploy

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	componentsapi "github.com/dapr/dapr/pkg/apis/components/v1alpha1"
	configurationapi "github.com/dapr/dapr/pkg/apis/configuration/v1alpha1"
	resiliencyapi "github.com/dapr/dapr/pkg/apis/resiliency/v1alpha1"
	"github.com/dapr/dapr/pkg/injector/patcher"
	"github.com/dapr/dapr/pkg/resiliency"
	"github.com/dapr/kit/logger"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// facts are what the code says the deployment must agree with.
type facts struct {
	appID       string   // dapr.AppID
	appPort     int      // dapr.AppPort
	defaultAddr string   // cmd/taskagent's default --addr
	settings    []string // the environment variables cmd/taskagent reads
	stateStore  string   // dapr.StateStore
	pubSub      string   // dapr.PubSub
	actorTypes  []string // the actor types the app hosts
	image       image    // what the Dockerfile builds
}

// Names in the manifests that the checks look for.
const (
	appName        = "taskagent" // the Deployment, its container, Service, PDB
	appReplicas    = 2
	daprdContainer = "daprd"
	tokenKey       = "token" // the key Dapr reads from api-token and app-token Secrets
	livenessPath   = "/healthz"
	readinessPath  = "/readyz"
)

// Dapr annotations.
const (
	annEnabled       = "dapr.io/enabled"
	annAppID         = "dapr.io/app-id"
	annAppPort       = "dapr.io/app-port"
	annConfig        = "dapr.io/config"
	annAPIToken      = "dapr.io/api-token-secret"
	annAppToken      = "dapr.io/app-token-secret"
	annCPURequest    = "dapr.io/sidecar-cpu-request"
	annCPULimit      = "dapr.io/sidecar-cpu-limit"
	annMemoryRequest = "dapr.io/sidecar-memory-request"
	annMemoryLimit   = "dapr.io/sidecar-memory-limit"
	annHealthPath    = "dapr.io/app-health-check-path"
	annScheduler     = "dapr.io/scheduler-host-address"
)

// schedulerRemindersFeature is the Dapr 1.14 preview feature that keeps every
// actor reminder as a job of its own in the Scheduler service, so that no
// record grows with the number of tasks; the Configuration must turn it on.
const schedulerRemindersFeature = "SchedulerReminders"

// controlPlaneScheduler is the scheduler address Dapr 1.14's injector gives
// daprd unless the dapr.io/scheduler-host-address annotation says otherwise:
// the control plane's dapr-scheduler-server (one replica, in dapr-system).
var controlPlaneScheduler = strings.Join(patcher.ServiceScheduler.AddressAllInstances(1, "dapr-system", "cluster.local"), ",")

// defaultAddr reads the default of Config.Addr from cmd/taskagent's
// defaultConfig (package main cannot be imported).
func defaultAddr(file string) (string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, 0)
	if err != nil {
		return "", err
	}
	var addr string
	var found bool
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "defaultConfig" || fn.Body == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Addr" {
				if lit, ok := kv.Value.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					addr, err = strconv.Unquote(lit.Value)
					found = true
				}
			}
			return true
		})
	}
	if err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("%s: no Addr: \"...\" in func defaultConfig", file)
	}
	return addr, nil
}

// settingsEnv lists the environment variables cmd/taskagent reads: the string
// literals in (*Config).settings that look like variable names.
func settingsEnv(file string) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, 0)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "settings" || fn.Recv == nil || fn.Body == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(v) {
					names = append(names, v)
				}
			}
			return true
		})
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no environment variable names in (*Config).settings", file)
	}
	return names, nil
}

var envName = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)

// checkAppEnv checks that every TASKAGENT_* variable and token the Deployment
// sets is one the app reads: a misspelled one would be ignored without a word.
func checkAppEnv(m manifests, f facts) error {
	_, c, err := app(m)
	if err != nil {
		return err
	}
	var problems []error
	for _, e := range c.Env {
		ours := strings.HasPrefix(e.Name, "TASKAGENT_") || strings.HasPrefix(e.Name, "DAPR_") || e.Name == "APP_API_TOKEN"
		if ours && !slices.Contains(f.settings, e.Name) {
			problems = append(problems, fmt.Errorf("container %s: env %s is not a setting of taskagent serve", c.Name, e.Name))
		}
	}
	return errors.Join(problems...)
}

// portOf returns the port of a listen address such as ":8080".
func portOf(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

// app returns the taskagent Deployment and its app container.
func app(m manifests) (*appsv1.Deployment, *corev1.Container, error) {
	d, err := typed[appsv1.Deployment](m, "Deployment", appName)
	if err != nil {
		return nil, nil, err
	}
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == appName {
			return d, c, nil
		}
	}
	return nil, nil, fmt.Errorf("Deployment %s has no container %q", appName, appName)
}

func envVar(c *corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// containerPort resolves a named or numbered port of a container.
func containerPort(c *corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// checkDaprApp checks that the app's Dapr annotations, container port, listen
// address, Service and the code's app id and port all agree.
func checkDaprApp(m manifests, f facts) error {
	d, c, err := app(m)
	if err != nil {
		return err
	}
	var problems []error
	fail := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	ann := d.Spec.Template.Annotations
	want := strconv.Itoa(f.appPort)

	if ann[annEnabled] != "true" {
		fail("annotation %s is %q, want \"true\"", annEnabled, ann[annEnabled])
	}
	if ann[annAppID] != f.appID {
		fail("annotation %s is %q; the code's dapr.AppID is %q", annAppID, ann[annAppID], f.appID)
	}
	if ann[annAppPort] != want {
		fail("annotation %s is %q; the code's dapr.AppPort is %d", annAppPort, ann[annAppPort], f.appPort)
	}
	if p, err := portOf(f.defaultAddr); err != nil || p != f.appPort {
		fail("the app's default address %q is not port %d (dapr.AppPort)", f.defaultAddr, f.appPort)
	}
	if p, ok := containerPort(c, intstr.FromString("http")); !ok || int(p) != f.appPort {
		fail("container %s: port \"http\" is %d, want %d", c.Name, p, f.appPort)
	}
	if e, ok := envVar(c, "TASKAGENT_ADDR"); ok {
		if p, err := portOf(e.Value); err != nil || p != f.appPort {
			fail("container %s: TASKAGENT_ADDR %q does not listen on %d", c.Name, e.Value, f.appPort)
		}
	}
	if e, ok := envVar(c, "TASKAGENT_RUNTIME"); !ok || e.Value != "dapr" {
		fail("container %s: TASKAGENT_RUNTIME is %q, want dapr", c.Name, e.Value)
	}
	if !slices.Contains(f.image.ports, f.appPort) {
		fail("the image exposes %v, not %d", f.image.ports, f.appPort)
	}
	if name := ann[annConfig]; name == "" {
		fail("no %s annotation", annConfig)
	} else if _, ok := m.find("Configuration", name); !ok {
		fail("annotation %s names Configuration %q, which is not in the manifests", annConfig, name)
	}
	if replicas(d.Spec.Replicas) != appReplicas {
		fail("Deployment %s has %d replicas, want %d", d.Name, replicas(d.Spec.Replicas), appReplicas)
	}

	svc, err := typed[corev1.Service](m, "Service", appName)
	if err != nil {
		problems = append(problems, err)
	} else {
		for _, sp := range svc.Spec.Ports {
			if p, ok := containerPort(c, sp.TargetPort); !ok || int(p) != f.appPort {
				fail("Service %s port %d targets %s, which is not the app port %d", svc.Name, sp.Port, sp.TargetPort.String(), f.appPort)
			}
		}
	}
	return errors.Join(problems...)
}

// checkProbes checks that the app's probes and Dapr's app health check ask the
// app's health routes on the app port.
func checkProbes(m manifests, f facts) error {
	d, c, err := app(m)
	if err != nil {
		return err
	}
	var problems []error
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"startupProbe", c.StartupProbe, livenessPath},
		{"livenessProbe", c.LivenessProbe, livenessPath},
		{"readinessProbe", c.ReadinessProbe, readinessPath},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			problems = append(problems, fmt.Errorf("container %s: no HTTP %s", c.Name, p.name))
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			problems = append(problems, fmt.Errorf("container %s: %s asks %s, want %s", c.Name, p.name, p.probe.HTTPGet.Path, p.path))
		}
		if port, ok := containerPort(c, p.probe.HTTPGet.Port); !ok || int(port) != f.appPort {
			problems = append(problems, fmt.Errorf("container %s: %s asks port %s, not the app port", c.Name, p.name, p.probe.HTTPGet.Port.String()))
		}
	}
	if h := d.Spec.Template.Annotations[annHealthPath]; h != "" && h != livenessPath {
		problems = append(problems, fmt.Errorf("annotation %s is %s, want %s", annHealthPath, h, livenessPath))
	}
	return errors.Join(problems...)
}

// checkComponents checks the Dapr components the code uses: their names, types,
// the actor state store flag, scopes, and that redisHost is a Service of the
// manifests.
func checkComponents(m manifests, f facts) error {
	var problems []error
	fail := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	actorStores := 0
	for _, c := range allTyped[componentsapi.Component](m, "Component") {
		if metaValue(c, "actorStateStore") == "true" {
			actorStores++
		}
		if !slices.Contains(c.Scopes, f.appID) {
			fail("Component %s: scopes %v do not include the app id %s", c.Name, c.Scopes, f.appID)
		}
		if host := metaValue(c, "redisHost"); host != "" {
			if err := serviceAt(m, host); err != nil {
				fail("Component %s: redisHost: %v", c.Name, err)
			}
		}
	}
	if actorStores != 1 {
		fail("%d components set actorStateStore \"true\"; Dapr needs exactly one", actorStores)
	}
	for _, want := range []struct{ name, typ string }{{f.stateStore, "state.redis"}, {f.pubSub, "pubsub.redis"}} {
		c, err := typed[componentsapi.Component](m, "Component", want.name)
		if err != nil {
			fail("the code uses component %q: %v", want.name, err)
			continue
		}
		if c.Spec.Type != want.typ || c.Spec.Version != "v1" {
			fail("Component %s is %s %s, want %s v1", c.Name, c.Spec.Type, c.Spec.Version, want.typ)
		}
	}
	if c, err := typed[componentsapi.Component](m, "Component", f.stateStore); err == nil && metaValue(c, "actorStateStore") != "true" {
		fail("Component %s (the actor state store) does not set actorStateStore \"true\"", c.Name)
	}
	return errors.Join(problems...)
}

// metaValue returns a component metadata item's plain value.
func metaValue(c *componentsapi.Component, name string) string {
	for _, md := range c.Spec.Metadata {
		if md.Name == name {
			return md.Value.String()
		}
	}
	return ""
}

// serviceAt checks that host:port names a Service of the manifests (by its
// short name or its cluster DNS name) that serves the port.
func serviceAt(m manifests, hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return err
	}
	name, _, _ := strings.Cut(host, ".")
	svc, err := typed[corev1.Service](m, "Service", name)
	if err != nil {
		return fmt.Errorf("%s: %w", hostport, err)
	}
	for _, p := range svc.Spec.Ports {
		if strconv.Itoa(int(p.Port)) == port {
			return nil
		}
	}
	return fmt.Errorf("%s: Service %s has no port %s", hostport, name, port)
}

// checkResources checks that every container has CPU and memory requests and
// limits, requests within limits, that the Dapr sidecar's are set by
// annotations, and that GOMEMLIMIT is under the memory limit.
func checkResources(m manifests) error {
	var problems []error
	for _, w := range m.workloads() {
		spec := &w.template.Spec
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			where := fmt.Sprintf("%s %s container %s", w.kind, w.name, c.Name)
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[r]
				lim, hasLim := c.Resources.Limits[r]
				switch {
				case !hasReq:
					problems = append(problems, fmt.Errorf("%s: no %s request", where, r))
				case !hasLim:
					problems = append(problems, fmt.Errorf("%s: no %s limit", where, r))
				case req.Cmp(lim) > 0:
					problems = append(problems, fmt.Errorf("%s: %s request %s over its limit %s", where, r, req.String(), lim.String()))
				}
			}
			if e, ok := envVar(&c, "GOMEMLIMIT"); ok {
				lim := c.Resources.Limits[corev1.ResourceMemory]
				// GOMEMLIMIT's suffixes are KiB, MiB, GiB; Kubernetes' are Ki, Mi, Gi.
				q, err := resource.ParseQuantity(strings.TrimSuffix(e.Value, "B"))
				if err != nil || q.Cmp(lim) >= 0 {
					problems = append(problems, fmt.Errorf("%s: GOMEMLIMIT %s is not under the memory limit %s", where, e.Value, lim.String()))
				}
			}
		}
		ann := w.template.Annotations
		if ann[annEnabled] != "true" {
			continue
		}
		for _, pair := range [][2]string{{annCPURequest, annCPULimit}, {annMemoryRequest, annMemoryLimit}} {
			req, errReq := resource.ParseQuantity(ann[pair[0]])
			lim, errLim := resource.ParseQuantity(ann[pair[1]])
			switch {
			case errReq != nil:
				problems = append(problems, fmt.Errorf("%s %s: annotation %s %q: %v", w.kind, w.name, pair[0], ann[pair[0]], errReq))
			case errLim != nil:
				problems = append(problems, fmt.Errorf("%s %s: annotation %s %q: %v", w.kind, w.name, pair[1], ann[pair[1]], errLim))
			case req.Cmp(lim) > 0:
				problems = append(problems, fmt.Errorf("%s %s: sidecar request %s over its limit %s", w.kind, w.name, req.String(), lim.String()))
			}
		}
	}
	return errors.Join(problems...)
}

// checkSecurity checks that the app runs as the image's non-root user on a
// read-only root filesystem, and that no container can gain privileges.
func checkSecurity(m manifests, f facts) error {
	var problems []error
	fail := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if f.image.uid == 0 {
		fail("the image runs as root")
	}
	for _, w := range m.workloads() {
		spec := &w.template.Spec
		if spec.SecurityContext == nil || spec.SecurityContext.SeccompProfile == nil || spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			fail("%s %s: pod seccompProfile is not RuntimeDefault", w.kind, w.name)
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			fail("%s %s: mounts a Kubernetes API token it does not need", w.kind, w.name)
		}
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			sc := c.SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				fail("%s %s container %s: allowPrivilegeEscalation is not false", w.kind, w.name, c.Name)
			}
			if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				fail("%s %s container %s: does not drop ALL capabilities", w.kind, w.name, c.Name)
			}
		}
	}
	d, c, err := app(m)
	if err != nil {
		return errors.Join(append(problems, err)...)
	}
	pod := d.Spec.Template.Spec.SecurityContext
	sc := c.SecurityContext
	nonRoot := (sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (pod != nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot)
	if !nonRoot {
		fail("container %s: runAsNonRoot is not true", c.Name)
	}
	var uid *int64
	if pod != nil && pod.RunAsUser != nil {
		uid = pod.RunAsUser
	}
	if sc != nil && sc.RunAsUser != nil {
		uid = sc.RunAsUser
	}
	switch {
	case uid == nil:
		// The image's USER applies; checked above.
	case *uid == 0:
		fail("container %s: runAsUser is 0 (root)", c.Name)
	case *uid != f.image.uid:
		fail("container %s: runAsUser %d differs from the image's user %d", c.Name, *uid, f.image.uid)
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		fail("container %s: readOnlyRootFilesystem is not true", c.Name)
	}
	if d.Spec.Template.Spec.EnableServiceLinks == nil || *d.Spec.Template.Spec.EnableServiceLinks {
		fail("Deployment %s: enableServiceLinks is not false: Service %s would put TASKAGENT_* variables into the app's environment", d.Name, appName)
	}
	return errors.Join(problems...)
}

// secretRef is a reference to a key of a Secret.
type secretRef struct{ where, name, key string }

// secretRefs lists every Secret key the manifests refer to: container env,
// Dapr token annotations (Dapr reads key "token") and component metadata.
func secretRefs(m manifests) []secretRef {
	var refs []secretRef
	for _, w := range m.workloads() {
		spec := &w.template.Spec
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					refs = append(refs, secretRef{fmt.Sprintf("%s %s container %s env %s", w.kind, w.name, c.Name, e.Name), e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key})
				}
			}
		}
		for _, a := range []string{annAPIToken, annAppToken} {
			if name := w.template.Annotations[a]; name != "" {
				refs = append(refs, secretRef{fmt.Sprintf("%s %s annotation %s", w.kind, w.name, a), name, tokenKey})
			}
		}
	}
	for _, c := range allTyped[componentsapi.Component](m, "Component") {
		for _, md := range c.Spec.Metadata {
			if md.SecretKeyRef.Name != "" {
				refs = append(refs, secretRef{fmt.Sprintf("Component %s metadata %s", c.Name, md.Name), md.SecretKeyRef.Name, md.SecretKeyRef.Key})
			}
		}
	}
	return refs
}

// checkSecretRefs checks that every referenced Secret key exists, and that the
// app reads the very tokens its sidecar is given.
func checkSecretRefs(m manifests) error {
	var problems []error
	refs := secretRefs(m)
	if len(refs) == 0 {
		problems = append(problems, errors.New("no Secret is referenced"))
	}
	for _, r := range refs {
		s, err := typed[corev1.Secret](m, "Secret", r.name)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", r.where, err))
			continue
		}
		if _, ok := s.Data[r.key]; !ok {
			if _, ok := s.StringData[r.key]; !ok {
				problems = append(problems, fmt.Errorf("%s: Secret %s has no key %q", r.where, r.name, r.key))
			}
		}
	}
	d, c, err := app(m)
	if err != nil {
		return errors.Join(append(problems, err)...)
	}
	for _, p := range []struct{ env, annotation string }{{"DAPR_API_TOKEN", annAPIToken}, {"APP_API_TOKEN", annAppToken}} {
		e, ok := envVar(c, p.env)
		name := d.Spec.Template.Annotations[p.annotation]
		switch {
		case name == "":
			problems = append(problems, fmt.Errorf("no %s annotation", p.annotation))
		case !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil:
			problems = append(problems, fmt.Errorf("container %s: %s does not come from a Secret", c.Name, p.env))
		case e.ValueFrom.SecretKeyRef.Name != name || e.ValueFrom.SecretKeyRef.Key != tokenKey:
			problems = append(problems, fmt.Errorf("container %s: %s comes from Secret %s key %s, but the sidecar's (%s) from %s key %s",
				c.Name, p.env, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key, p.annotation, name, tokenKey))
		}
	}
	return errors.Join(problems...)
}

// knownDaprAnnotations returns the pod annotations Dapr 1.14's injector reads,
// with the kind of value each takes.
func knownDaprAnnotations() map[string]reflect.Kind {
	known := map[string]reflect.Kind{}
	t := reflect.TypeFor[patcher.SidecarConfig]()
	for i := range t.NumField() {
		f := t.Field(i)
		if key := f.Tag.Get("annotation"); key != "" {
			k := f.Type.Kind()
			if k == reflect.Pointer {
				k = f.Type.Elem().Kind()
			}
			known[key] = k
		}
	}
	return known
}

// checkDaprAnnotations checks that every dapr.io annotation is one Dapr 1.14
// knows and that its value parses: the injector ignores unknown annotations and
// values it cannot parse, with a log line at most.
func checkDaprAnnotations(m manifests) error {
	known := knownDaprAnnotations()
	var problems []error
	for _, w := range m.workloads() {
		for key, v := range w.template.Annotations {
			if !strings.HasPrefix(key, "dapr.io/") {
				continue
			}
			kind, ok := known[key]
			if !ok {
				problems = append(problems, fmt.Errorf("%s %s: annotation %s is not one Dapr 1.14 knows", w.kind, w.name, key))
				continue
			}
			switch kind {
			case reflect.Bool:
				if v != "true" && v != "false" {
					problems = append(problems, fmt.Errorf("%s %s: annotation %s is %q, want true or false", w.kind, w.name, key, v))
				}
			case reflect.Int, reflect.Int32, reflect.Int64:
				if _, err := strconv.ParseInt(v, 10, 32); err != nil {
					problems = append(problems, fmt.Errorf("%s %s: annotation %s: %v", w.kind, w.name, key, err))
				}
			}
		}
	}
	return errors.Join(problems...)
}

// injectSidecar runs Dapr 1.14's sidecar injector on the app's pod template and
// returns the pod as the cluster would run it.
func injectSidecar(m manifests) (*corev1.Pod, error) {
	d, _, err := app(m)
	if err != nil {
		return nil, err
	}
	pod := &corev1.Pod{ObjectMeta: *d.Spec.Template.ObjectMeta.DeepCopy(), Spec: *d.Spec.Template.Spec.DeepCopy()}
	pod.Name, pod.Namespace = d.Name+"-0", d.Namespace
	sc := patcher.NewSidecarConfig(pod)
	sc.Namespace = d.Namespace
	// What the injector sets before it reads the annotations.
	sc.SchedulerAddress = controlPlaneScheduler
	sc.SetFromPodAnnotations()
	if !sc.NeedsPatching() {
		return nil, errors.New("Dapr's injector would not add a sidecar")
	}
	patch, err := sc.GetPatch()
	if err != nil {
		return nil, fmt.Errorf("Dapr's injector: %w", err)
	}
	return patcher.PatchPod(pod, patch)
}

// checkSidecar checks the daprd container Dapr's injector adds: the app id,
// port and Configuration it is given, its resources, its tokens, and the
// scheduler it keeps reminders in.
func checkSidecar(m manifests, f facts) error {
	pod, err := injectSidecar(m)
	if err != nil {
		return err
	}
	var daprd, appC *corev1.Container
	for i := range pod.Spec.Containers {
		switch c := &pod.Spec.Containers[i]; c.Name {
		case daprdContainer:
			daprd = c
		case appName:
			appC = c
		}
	}
	if daprd == nil || appC == nil {
		return fmt.Errorf("the injected pod has containers %v, want %s and %s", containerNames(pod), appName, daprdContainer)
	}
	var problems []error
	fail := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	for flag, want := range map[string]string{
		"--app-id":       f.appID,
		"--app-port":     strconv.Itoa(f.appPort),
		"--app-protocol": "http",
		"--config":       pod.Annotations[annConfig],
		"--mode":         "kubernetes",
	} {
		if got := flagValue(daprd.Args, flag); got != want {
			fail("daprd %s is %q, want %q", flag, got, want)
		}
	}
	for _, want := range []struct {
		res        corev1.ResourceName
		list       corev1.ResourceList
		annotation string
	}{
		{corev1.ResourceCPU, daprd.Resources.Requests, annCPURequest},
		{corev1.ResourceCPU, daprd.Resources.Limits, annCPULimit},
		{corev1.ResourceMemory, daprd.Resources.Requests, annMemoryRequest},
		{corev1.ResourceMemory, daprd.Resources.Limits, annMemoryLimit},
	} {
		got, ok := want.list[want.res]
		exp, err := resource.ParseQuantity(pod.Annotations[want.annotation])
		if !ok || err != nil || got.Cmp(exp) != 0 {
			fail("daprd %s (%s) is %v, want %q", want.res, want.annotation, got.String(), pod.Annotations[want.annotation])
		}
	}
	for _, tok := range []struct{ env, annotation string }{{"DAPR_API_TOKEN", annAPIToken}, {"APP_API_TOKEN", annAppToken}} {
		e, ok := envVar(daprd, tok.env)
		if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != pod.Annotations[tok.annotation] {
			fail("daprd gets no %s from Secret %q", tok.env, pod.Annotations[tok.annotation])
		}
	}
	for _, env := range []string{"DAPR_HTTP_PORT", "DAPR_GRPC_PORT"} {
		if _, ok := envVar(appC, env); !ok {
			fail("the injector gives container %s no %s", appC.Name, env)
		}
	}
	// The Configuration keeps reminders in the Scheduler service
	// (checkConfiguration); daprd without one fails to start its actors.
	if e, _ := envVar(daprd, "DAPR_SCHEDULER_HOST_ADDRESS"); e.Value != controlPlaneScheduler {
		fail("daprd DAPR_SCHEDULER_HOST_ADDRESS is %q (annotation %s %q), want the control plane's scheduler %q",
			e.Value, annScheduler, pod.Annotations[annScheduler], controlPlaneScheduler)
	}
	return errors.Join(problems...)
}

func containerNames(pod *corev1.Pod) []string {
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	return names
}

// flagValue returns the value after flag in args.
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// checkResiliency loads every Resiliency with Dapr's own loader, then checks
// what the loader lets pass: that targets name defined policies, the app's actor
// types and existing components, and that the app is in scope.
func checkResiliency(m manifests, f facts) error {
	all := allTyped[resiliencyapi.Resiliency](m, "Resiliency")
	if len(all) == 0 {
		return errors.New("no Resiliency")
	}
	var problems []error
	fail := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	for _, r := range all {
		if err := resiliency.New(logger.NewLogger("deploy-test")).DecodeConfiguration(r); err != nil {
			fail("Resiliency %s: Dapr rejects it: %v", r.Name, err)
		}
		if !slices.Contains(r.Scopes, f.appID) {
			fail("Resiliency %s: scopes %v do not include %s", r.Name, r.Scopes, f.appID)
		}
		p := r.Spec.Policies
		check := func(target, timeout, retry, breaker string) {
			if _, ok := p.Timeouts[timeout]; timeout != "" && !ok {
				fail("Resiliency %s: %s: no timeout policy %q", r.Name, target, timeout)
			}
			if _, ok := p.Retries[retry]; retry != "" && !ok {
				fail("Resiliency %s: %s: no retry policy %q", r.Name, target, retry)
			}
			if _, ok := p.CircuitBreakers[breaker]; breaker != "" && !ok {
				fail("Resiliency %s: %s: no circuit breaker policy %q", r.Name, target, breaker)
			}
			if timeout == "" || retry == "" || breaker == "" {
				fail("Resiliency %s: %s: want a timeout, a retry and a circuit breaker, got %q, %q, %q", r.Name, target, timeout, retry, breaker)
			}
		}
		var actorTypes []string
		for name, t := range r.Spec.Targets.Actors {
			actorTypes = append(actorTypes, name)
			check("actor "+name, t.Timeout, t.Retry, t.CircuitBreaker)
		}
		slices.Sort(actorTypes)
		if want := slices.Sorted(slices.Values(f.actorTypes)); !slices.Equal(actorTypes, want) {
			fail("Resiliency %s: actor targets %v; the app hosts %v", r.Name, actorTypes, want)
		}
		for name, t := range r.Spec.Targets.Components {
			if _, ok := m.find("Component", name); !ok {
				fail("Resiliency %s: target component %q is not in the manifests", r.Name, name)
			}
			check("component "+name+" outbound", t.Outbound.Timeout, t.Outbound.Retry, t.Outbound.CircuitBreaker)
			if name == f.pubSub {
				check("component "+name+" inbound", t.Inbound.Timeout, t.Inbound.Retry, t.Inbound.CircuitBreaker)
			}
		}
		if _, ok := r.Spec.Targets.Components[f.pubSub]; !ok {
			fail("Resiliency %s: no policies for component %s", r.Name, f.pubSub)
		}
		// A state store policy makes Dapr 1.14 write reminders without its
		// built-in retry, and reminder writes of two sidecars conflict at every
		// workflow step (seen in cmd/taskagent/dapr_e2e_test.go).
		if _, ok := r.Spec.Targets.Components[f.stateStore]; ok {
			fail("Resiliency %s: component %s has policies; they turn off Dapr's retry of reminder writes", r.Name, f.stateStore)
		}
		if rp, ok := p.Retries["DaprBuiltInActorReminderRetries"]; !ok || rp.MaxRetries == nil || *rp.MaxRetries <= 0 {
			fail("Resiliency %s: no DaprBuiltInActorReminderRetries with maxRetries > 0; Dapr 1.14's own retries no reminder write", r.Name)
		}
	}
	return errors.Join(problems...)
}

// checkConfiguration checks the sidecars' Configuration: mTLS on, reminders
// in the Scheduler service, a sampling rate between 0 and 1, and (when a
// Zipkin endpoint is in-cluster) that its Service exists.
func checkConfiguration(m manifests, wantZipkin bool) error {
	d, _, err := app(m)
	if err != nil {
		return err
	}
	c, err := typed[configurationapi.Configuration](m, "Configuration", d.Spec.Template.Annotations[annConfig])
	if err != nil {
		return err
	}
	var problems []error
	fail := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if c.Spec.MTLSSpec == nil || c.Spec.MTLSSpec.Enabled == nil || !*c.Spec.MTLSSpec.Enabled {
		fail("Configuration %s: mTLS is not enabled", c.Name)
	}
	if !featureEnabled(c, schedulerRemindersFeature) {
		fail("Configuration %s: feature %s is not enabled; reminders would be kept in state store records that grow with the number of tasks", c.Name, schedulerRemindersFeature)
	}
	t := c.Spec.TracingSpec
	if t == nil || t.Zipkin == nil {
		fail("Configuration %s: no Zipkin tracing", c.Name)
		return errors.Join(problems...)
	}
	if r, err := strconv.ParseFloat(t.SamplingRate, 64); err != nil || r <= 0 || r > 1 {
		fail("Configuration %s: samplingRate %q is not in (0, 1]", c.Name, t.SamplingRate)
	}
	u, err := url.Parse(t.Zipkin.EndpointAddresss)
	if err != nil || u.Path != "/api/v2/spans" {
		fail("Configuration %s: zipkin endpoint %q is not a Zipkin v2 spans URL", c.Name, t.Zipkin.EndpointAddresss)
	} else if wantZipkin {
		if err := serviceAt(m, u.Host); err != nil {
			fail("Configuration %s: zipkin endpoint: %v", c.Name, err)
		}
	}
	return errors.Join(problems...)
}

// featureEnabled reports whether the Configuration turns the named preview
// feature on, as Dapr 1.14 reads it (config.LoadFeatures): any entry of that
// name that is enabled.
func featureEnabled(c *configurationapi.Configuration, name string) bool {
	for _, f := range c.Spec.Features {
		if f.Name == name && f.Enabled != nil && *f.Enabled {
			return true
		}
	}
	return false
}

// checkSelectors checks that every Service and PodDisruptionBudget selects the
// pods of a workload, that Services target ports those pods have, and that a
// PDB leaves room to evict.
func checkSelectors(m manifests) error {
	var problems []error
	selects := func(sel map[string]string) *workload {
		if len(sel) == 0 {
			return nil
		}
		for _, w := range m.workloads() {
			match := true
			for k, v := range sel {
				if w.template.Labels[k] != v {
					match = false
				}
			}
			if match {
				return &w
			}
		}
		return nil
	}
	for _, s := range allTyped[corev1.Service](m, "Service") {
		w := selects(s.Spec.Selector)
		if w == nil {
			problems = append(problems, fmt.Errorf("Service %s selects no workload's pods (%v)", s.Name, s.Spec.Selector))
			continue
		}
		for _, sp := range s.Spec.Ports {
			found := false
			for i := range w.template.Spec.Containers {
				if _, ok := containerPort(&w.template.Spec.Containers[i], sp.TargetPort); ok {
					found = true
				}
			}
			if !found {
				problems = append(problems, fmt.Errorf("Service %s port %d: %s %s has no port %s", s.Name, sp.Port, w.kind, w.name, sp.TargetPort.String()))
			}
		}
	}
	pdbs := allTyped[policyv1.PodDisruptionBudget](m, "PodDisruptionBudget")
	if _, ok := m.find("PodDisruptionBudget", appName); !ok {
		problems = append(problems, fmt.Errorf("no PodDisruptionBudget %s", appName))
	}
	for _, p := range pdbs {
		if p.Spec.Selector == nil {
			problems = append(problems, fmt.Errorf("PodDisruptionBudget %s has no selector", p.Name))
			continue
		}
		w := selects(p.Spec.Selector.MatchLabels)
		if w == nil {
			problems = append(problems, fmt.Errorf("PodDisruptionBudget %s selects no workload's pods", p.Name))
			continue
		}
		if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.Type != intstr.Int || p.Spec.MinAvailable.IntVal < 1 || p.Spec.MinAvailable.IntVal >= w.replicas {
			problems = append(problems, fmt.Errorf("PodDisruptionBudget %s: minAvailable %v with %d replicas: want at least 1 and fewer than the replicas", p.Name, p.Spec.MinAvailable, w.replicas))
		}
	}
	return errors.Join(problems...)
}

// checkRedis checks that Redis keeps its data: append-only file on a
// PersistentVolumeClaim, and a password.
func checkRedis(m manifests) error {
	s, err := typed[appsv1.StatefulSet](m, "StatefulSet", "redis")
	if err != nil {
		return err
	}
	var problems []error
	var c *corev1.Container
	for i := range s.Spec.Template.Spec.Containers {
		if s.Spec.Template.Spec.Containers[i].Name == "redis" {
			c = &s.Spec.Template.Spec.Containers[i]
		}
	}
	if c == nil {
		return errors.New("StatefulSet redis has no container redis")
	}
	if flagValue(c.Args, "--appendonly") != "yes" {
		problems = append(problems, fmt.Errorf("redis args %v: no --appendonly yes", c.Args))
	}
	if p := flagValue(c.Args, "--requirepass"); p != "$(REDIS_PASSWORD)" {
		problems = append(problems, fmt.Errorf("redis --requirepass is %q, want $(REDIS_PASSWORD)", p))
	}
	if e, ok := envVar(c, "REDIS_PASSWORD"); !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		problems = append(problems, errors.New("redis: REDIS_PASSWORD does not come from a Secret"))
	} else {
		// The components must log in with the password Redis requires.
		ref := e.ValueFrom.SecretKeyRef
		for _, comp := range allTyped[componentsapi.Component](m, "Component") {
			for _, md := range comp.Spec.Metadata {
				if md.Name == "redisPassword" && (md.SecretKeyRef.Name != ref.Name || md.SecretKeyRef.Key != ref.Key) {
					problems = append(problems, fmt.Errorf("Component %s: redisPassword from Secret %q key %q; Redis's is Secret %q key %q",
						comp.Name, md.SecretKeyRef.Name, md.SecretKeyRef.Key, ref.Name, ref.Key))
				}
			}
		}
	}
	dir := flagValue(c.Args, "--dir")
	mounted := false
	for _, vm := range c.VolumeMounts {
		for _, pvc := range s.Spec.VolumeClaimTemplates {
			if vm.Name == pvc.Name && vm.MountPath == dir {
				mounted = true
			}
		}
	}
	if !mounted {
		problems = append(problems, fmt.Errorf("redis --dir %q is not a PersistentVolumeClaim's mount", dir))
	}
	return errors.Join(problems...)
}
