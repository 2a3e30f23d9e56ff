// Package workflow is TaskProcessingWorkflow, the durable orchestration that takes a
// task from request to notified assignee: validate, create the task, assign it, set
// its deadline reminder, notify the assignee (retried with backoff on durable
// timers), and on failure undo the assignment (saga compensation).
//
// It is written once against durabletask-go's task package, the engine Dapr Workflow
// runs, so both runtimes execute the same orchestrator. Activities reach actors only
// through the small Tasks interface (an actor client over any runtime), never an
// actor struct. An Engine, provided by each runtime, starts and inspects instances.
//
// Orchestrator code must be deterministic: it reads time only from the orchestration
// context and does no I/O; and it must not use defer, because awaiting an
// unfinished task unwinds the orchestrator with a panic.
package workflow
