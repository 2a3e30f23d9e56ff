// Package wfbackend is the embedded runtime's durable workflow store: an
// implementation of durabletask-go's backend.Backend (v0.5.0) over one SQLite
// file. The orchestration engine (durabletask-go's executor and the task
// authoring API) runs unchanged on top of it; only storage and dispatch are ours.
//
// It sits in the runtime layer: workflow code in internal/workflow is written
// against the task package and never sees this package; cmd wires a Backend
// into backend.NewTaskHubWorker.
//
// # Why not durabletask-go's own SQLite backend
//
// That backend polls for work (the worker backs off 50 ms to 5 s when it finds
// none), hands out one work item per poll, commits every change in its own
// transaction, and records locks in the database, so work locked by a crashed
// process stays invisible for two minutes. On two cores it runs 9–25
// five-activity workflows per second. This package instead:
//
//   - keeps every pending work item (orchestration inbox events, activities,
//     durable timers) in memory, so handing out work is a map and queue
//     operation, and Get*WorkItem blocks until work is enqueued: the enqueuing
//     code path wakes it, nothing polls. On disk, inbox events and timers have
//     rows; a scheduled activity is its TaskScheduled event in the history,
//     and start-up runs again those without a result;
//   - never writes locks to disk: a lock is a token held in memory, so after a
//     crash or restart every work item is available at once (see Ownership);
//   - funnels every write through one committer goroutine that puts all the
//     changes waiting at that moment into one transaction (group commit). A
//     caller returns only after its change is durable (WAL, synchronous=FULL);
//   - fires durable timers from an in-memory heap, rebuilt from the database at
//     start-up, instead of polling for due rows;
//   - caches each running instance's history in memory, so an orchestration
//     turn does not read the database.
//
// # Ownership
//
// One process owns a database file. Open does not take a file lock; running two
// processes on the same file would hand the same work to both. The embedded
// runtime is single-node by design (see DESIGN.md); multi-node deployments use
// Dapr.
//
// # Delivery guarantees
//
// Work items are delivered at least once: a crash between running an activity
// and committing the turn that consumes its result runs the activity again
// after restart. (The result of an activity whose instance is running is held
// in memory until that turn, which writes it to the history; it is not
// committed on its own.) An orchestration turn is atomic: its history, outbox
// (activities, timers, messages to other instances) and the removal of the
// inbox events it consumed commit in one transaction or not at all.
package wfbackend
