// Package notify is how the task-processing workflow tells an assignee about a task.
//
// It sits beside the domain: it knows the error vocabulary (internal/errs) and
// nothing of actors, workflows or runtimes. The workflow's notify activity calls a
// Notifier; the HTTP API reads a Service's Status for GET /notifier; cmd builds the
// Service from configuration with New.
//
// The seed tutorial failed 20% of notifications at random to show saga compensation.
// Here delivery is real (a log line plus an event, or a webhook), failures are
// classified (errs.Unavailable: retry may work; errs.Invalid: do not retry), a circuit
// breaker stops a dead service from turning every workflow into a slow chain of
// retries and compensations, and failures for demos and tests are injected on purpose
// (FaultInjector), per assignee or at a chosen rate.
//
// A Service is the chain Breaker(FaultInjector(base)). Failures injected at a rate
// look like a flaky service to the breaker, so a demo with a high failure rate shows
// the circuit opening; failures injected for named assignees concern those
// recipients only (ErrRecipient) and never open it for everyone else.
package notify
