// Package daprtest starts real Dapr processes for tests: Redis, the Dapr
// placement service, the Dapr Scheduler service and daprd sidecars, each on
// free 127.0.0.1 ports, each stopped when the test ends. It is the test side of the dapr runtime: the
// contract suites and the end-to-end tests of taskagent on Dapr build on it.
//
// The programs come from scripts/dapr-tools, which builds daprd, placement
// and scheduler (Dapr 1.14.0) into .tools/dapr/v1.14.0/ and installs
// redis-server. Tests
// fail, rather than skip, when they are missing: CI runs scripts/dapr-tools
// first, so a missing program is a broken setup, not an optional feature.
//
// Every start waits for the process to answer its readiness probe within a
// deadline, and fails the test with the process's output if it does not. A
// process's output is printed when the test fails.
//
// daprtest must not import package dapr: dapr's own tests import daprtest.
// Its tests check that the names it writes into components equal dapr's.
package daprtest
