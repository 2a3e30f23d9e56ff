// Package deploy holds the offline checks of taskagent's deployment: the
// Dockerfile, its .dockerignore, and the Kubernetes manifests in deploy/k8s (a
// kustomize base and overlays, with Dapr sidecars). The package has no code the
// program runs; it sits outside the layering of the others.
//
// Its tests need no cluster and no Docker engine. They decode every manifest
// strictly into the Kubernetes API types (k8s.io/api) and Dapr's CRD types
// (github.com/dapr/dapr/pkg/apis), so an unknown or misspelled field is an
// error; render the base and the overlays with kustomize's Go API, which is what
// `kubectl kustomize` runs (and compare with kubectl when it is installed); run
// Dapr 1.14's own sidecar injector on the app's pod template and its own
// resiliency loader on the Resiliency; and check that the manifests agree with
// the code: the Dapr app id and port, the component names, the actor types, the
// HTTP port's default, the probes' routes and the image's user.
package deploy
