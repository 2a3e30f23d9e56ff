package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	componentsapi "github.com/dapr/dapr/pkg/apis/components/v1alpha1"
	configurationapi "github.com/dapr/dapr/pkg/apis/configuration/v1alpha1"
	resiliencyapi "github.com/dapr/dapr/pkg/apis/resiliency/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	ktypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// repoRoot is the repository's root, seen from this package's directory (where
// go test runs).
const repoRoot = "../.."

var (
	k8sDir           = filepath.Join(repoRoot, "deploy", "k8s")
	baseDir          = filepath.Join(k8sDir, "base")
	localDir         = filepath.Join(k8sDir, "overlays", "local")
	renderDirs       = []string{baseDir, localDir}
	dockerfilePath   = filepath.Join(repoRoot, "Dockerfile")
	dockerignorePath = filepath.Join(repoRoot, ".dockerignore")
)

// kinds maps apiVersion and kind to the Go type a manifest must decode into.
// A kind missing here is an error: every manifest is checked against a schema.
var kinds = map[string]func() any{
	"v1/Namespace":             func() any { return new(corev1.Namespace) },
	"v1/ServiceAccount":        func() any { return new(corev1.ServiceAccount) },
	"v1/Service":               func() any { return new(corev1.Service) },
	"v1/Secret":                func() any { return new(corev1.Secret) },
	"v1/ConfigMap":             func() any { return new(corev1.ConfigMap) },
	"v1/PersistentVolumeClaim": func() any { return new(corev1.PersistentVolumeClaim) },
	"apps/v1/Deployment":       func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":      func() any { return new(appsv1.StatefulSet) },
	"policy/v1/PodDisruptionBudget": func() any {
		return new(policyv1.PodDisruptionBudget)
	},
	"dapr.io/v1alpha1/Component":     func() any { return new(componentsapi.Component) },
	"dapr.io/v1alpha1/Configuration": func() any { return new(configurationapi.Configuration) },
	"dapr.io/v1alpha1/Resiliency":    func() any { return new(resiliencyapi.Resiliency) },
	"kustomize.config.k8s.io/v1beta1/Kustomization": func() any {
		return new(ktypes.Kustomization)
	},
}

// object is one decoded manifest.
type object struct {
	source     string // file and document number, or the rendered directory
	apiVersion string
	kind       string
	namespace  string
	name       string
	obj        any // a pointer to the type kinds names
}

func (o object) String() string {
	return fmt.Sprintf("%s %s/%s (%s)", o.kind, o.namespace, o.name, o.source)
}

// decodeStrict decodes one YAML document into its API type. Unknown fields,
// fields in the wrong case and duplicate keys are errors, as they are for
// kubectl apply --validate=strict against a server.
func decodeStrict(source string, doc []byte) (object, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return object{}, fmt.Errorf("%s: %w", source, err)
	}
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(j, &tm); err != nil {
		return object{}, fmt.Errorf("%s: %w", source, err)
	}
	newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return object{}, fmt.Errorf("%s: no API type known for apiVersion %q kind %q", source, tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	strict, err := kjson.UnmarshalStrict(j, obj)
	if err != nil {
		return object{}, fmt.Errorf("%s: %s: %w", source, tm.Kind, err)
	}
	if len(strict) > 0 {
		return object{}, fmt.Errorf("%s: %s: %w", source, tm.Kind, errors.Join(strict...))
	}
	o := object{source: source, apiVersion: tm.APIVersion, kind: tm.Kind, obj: obj}
	if k, ok := obj.(*ktypes.Kustomization); ok {
		o.name = "kustomization"
		if k.MetaData != nil && k.MetaData.Name != "" {
			o.name = k.MetaData.Name
		}
		return o, nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return object{}, fmt.Errorf("%s: %w", source, err)
	}
	o.namespace, o.name = m.GetNamespace(), m.GetName()
	if o.name == "" {
		return object{}, fmt.Errorf("%s: %s has no metadata.name", source, tm.Kind)
	}
	return o, nil
}

// splitYAML returns the documents of a YAML stream, skipping empty ones.
func splitYAML(data []byte) ([][]byte, error) {
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

// stripComments drops whole-line comments, so that a document of comments only
// counts as empty.
func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

// decodeAll strictly decodes every document of a YAML stream.
func decodeAll(source string, data []byte) (manifests, error) {
	docs, err := splitYAML(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var m manifests
	var problems []error
	for i, doc := range docs {
		o, err := decodeStrict(fmt.Sprintf("%s#%d", source, i+1), doc)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		m = append(m, o)
	}
	return m, errors.Join(problems...)
}

// render builds a kustomization directory the way `kubectl kustomize` does:
// kustomize's Go API (the version kubectl embeds), files confined to the
// directory tree, no plugins, objects in kubectl's (legacy) order.
func render(dir string) ([]byte, error) {
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy
	resMap, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	return resMap.AsYaml()
}

// mustRender renders dir and decodes the result strictly.
func mustRender(t *testing.T, dir string) manifests {
	t.Helper()
	out, err := render(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeAll("kustomize build "+dir, out)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// manifestFiles lists every YAML file under deploy/k8s.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(k8sDir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no YAML files under %s", k8sDir)
	}
	return files
}

// manifests is a set of decoded objects.
type manifests []object

// find returns the object of kind and name (in any namespace). The name is read
// from the object itself, which a test may have changed.
func (m manifests) find(kind, name string) (object, bool) {
	for _, o := range m {
		if o.kind != kind {
			continue
		}
		if a, err := meta.Accessor(o.obj); err == nil && a.GetName() == name {
			return o, true
		}
	}
	return object{}, false
}

// all returns the objects of a kind.
func (m manifests) all(kind string) []object {
	var out []object
	for _, o := range m {
		if o.kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// typed returns the object of kind and name as *T.
func typed[T any](m manifests, kind, name string) (*T, error) {
	o, ok := m.find(kind, name)
	if !ok {
		return nil, fmt.Errorf("no %s named %q", kind, name)
	}
	v, ok := o.obj.(*T)
	if !ok {
		return nil, fmt.Errorf("%s is a %T", o, o.obj)
	}
	return v, nil
}

// allTyped returns every object of kind as *T.
func allTyped[T any](m manifests, kind string) []*T {
	var out []*T
	for _, o := range m.all(kind) {
		if v, ok := o.obj.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// workload is a pod template with the name of what owns it.
type workload struct {
	kind, name string
	replicas   int32
	selector   map[string]string
	template   *corev1.PodTemplateSpec
}

// workloads returns the pod templates of every Deployment and StatefulSet.
func (m manifests) workloads() []workload {
	var out []workload
	for _, d := range allTyped[appsv1.Deployment](m, "Deployment") {
		out = append(out, workload{"Deployment", d.Name, replicas(d.Spec.Replicas), matchLabels(d.Spec.Selector.MatchLabels), &d.Spec.Template})
	}
	for _, s := range allTyped[appsv1.StatefulSet](m, "StatefulSet") {
		out = append(out, workload{"StatefulSet", s.Name, replicas(s.Spec.Replicas), matchLabels(s.Spec.Selector.MatchLabels), &s.Spec.Template})
	}
	return out
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

func matchLabels(l map[string]string) map[string]string {
	if l == nil {
		return map[string]string{}
	}
	return l
}
