package daprtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// DaprVersion is the Dapr runtime version the harness runs; scripts/dapr-tools
// builds the same version.
const DaprVersion = "1.14.0"

// ToolsEnv names an environment variable that, when set, is the directory
// holding daprd, placement and scheduler (and optionally redis-server) instead of
// <repo>/.tools/dapr/v1.14.0.
const ToolsEnv = "TASKAGENT_DAPR_TOOLS"

// Tools are the paths of the programs the harness starts.
type Tools struct {
	Daprd       string
	Placement   string
	Scheduler   string
	RedisServer string
}

// FindTools locates daprd, placement and scheduler in $TASKAGENT_DAPR_TOOLS or in
// <repo>/.tools/dapr/v1.14.0/, and redis-server in that directory or on PATH.
// When one is missing it fails the test, telling the developer to run
// scripts/dapr-tools.
func FindTools(t testing.TB) Tools {
	t.Helper()
	tools, err := findTools()
	if err != nil {
		hint := "run scripts/dapr-tools (from the repository root) to build daprd, placement and scheduler and install redis-server"
		if dir := os.Getenv(ToolsEnv); dir != "" {
			hint += ", or unset " + ToolsEnv + "=" + dir
		}
		t.Fatalf("daprtest: Dapr tools missing:\n%v\n%s", err, hint)
	}
	return tools
}

func findTools() (Tools, error) {
	dir := os.Getenv(ToolsEnv)
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return Tools{}, err
		}
		dir = filepath.Join(root, ".tools", "dapr", "v"+DaprVersion)
	}
	var problems []error
	executable := func(name string) string {
		path := filepath.Join(dir, name)
		if err := isExecutable(path); err != nil {
			problems = append(problems, err)
			return ""
		}
		return path
	}
	tools := Tools{Daprd: executable("daprd"), Placement: executable("placement"), Scheduler: executable("scheduler")}
	if isExecutable(filepath.Join(dir, "redis-server")) == nil {
		tools.RedisServer = filepath.Join(dir, "redis-server")
	} else if path, err := exec.LookPath("redis-server"); err == nil {
		tools.RedisServer = path
	} else {
		problems = append(problems, errors.New("redis-server is not on PATH"))
	}
	return tools, errors.Join(problems...)
}

func isExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// repoRoot walks up from the working directory (a test's package directory)
// to the directory holding go.mod.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod in %s or above it", wd)
		}
	}
}
