// Package bench is taskagent's load generator: it drives a running server through
// its HTTP API only (so it measures either runtime), tracks every workflow it
// starts by reading the server's event stream, measures throughput and latencies,
// and checks what it measured: every workflow final, every due reminder fired
// once, compensation exactly where notifications were made to fail, no 5xx.
//
// It sits beside cmd: it imports no domain or runtime package, and speaks the API
// as any client would. cmd/taskagent's bench command parses flags into a Config
// and calls Run.
package bench
