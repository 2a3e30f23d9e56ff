// Package httpapi is taskagent's HTTP interface: routes, JSON decoding and
// validation, the one mapping from error kinds to status codes, and the event stream.
//
// It sits at the edge of the layering. It consumes tasks, chats and the event log
// through the small interfaces declared in services.go, so the embedded runtime, the
// Dapr runtime and the test fakes all serve the same API; cmd/taskagent wires it to
// an http.Server. Nothing here knows how actors or events are stored.
package httpapi
