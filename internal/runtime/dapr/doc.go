// Package dapr runs taskagent's actors, workflows and events on Dapr: the app
// serves Dapr's actor protocol for the same domain actors the embedded runtime
// hosts, keeps actor state through the sidecar's actor state API, runs the
// workflow through daprd's workflow engine, and publishes events to Dapr pub/sub.
package dapr

// Names the deployment must agree with: the Dapr components the code uses and the
// app id the sidecars register.
const (
	// StateStore is the Dapr state store component holding actor state; it must
	// set actorStateStore: "true".
	StateStore = "statestore"
	// PubSub is the Dapr pub/sub component events are published to.
	PubSub = "pubsub"
	// AppID is the Dapr app id of taskagent.
	AppID = "taskagent"
	// AppPort is the port taskagent serves HTTP on (its API and Dapr's app
	// protocol) unless told otherwise.
	AppPort = 8080
)
