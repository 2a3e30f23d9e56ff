package daprtest

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/taskagent/taskagent/internal/runtime/dapr"
)

// TestNames checks that the components the harness writes, and the ones in
// deploy/dapr, use the names package dapr expects.
func TestNames(t *testing.T) {
	if stateStoreName != dapr.StateStore {
		t.Errorf("state store name %q, want dapr.StateStore %q", stateStoreName, dapr.StateStore)
	}
	if pubSubName != dapr.PubSub {
		t.Errorf("pub/sub name %q, want dapr.PubSub %q", pubSubName, dapr.PubSub)
	}

	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	deploy := filepath.Join(root, "deploy", "dapr")
	tests := []struct {
		file string
		want []string // regular expressions, each matching a line
	}{
		{"components/statestore.yaml", []string{
			`name: ` + dapr.StateStore, `type: state\.redis`, `name: actorStateStore`, `value: "true"`,
		}},
		{"components/pubsub.yaml", []string{
			`name: ` + dapr.PubSub, `type: pubsub\.redis`, `name: consumerID`, `value: "\{uuid\}"`,
		}},
		{"config.yaml", []string{`kind: Configuration`, `name: SchedulerReminders`, `enabled: true`}},
		{"dapr.yaml", []string{
			`appID: ` + dapr.AppID, `appPort: ` + strconv.Itoa(dapr.AppPort),
			`resourcesPaths: \["\./components"\]`, `configFilePath: \./config\.yaml`,
		}},
	}
	for _, tt := range tests {
		text, err := os.ReadFile(filepath.Join(deploy, tt.file))
		if err != nil {
			t.Error(err)
			continue
		}
		for _, w := range tt.want {
			if !regexp.MustCompile(`(?m)^\s*(- )?` + w + `\s*$`).Match(text) {
				t.Errorf("deploy/dapr/%s: no line matching %q", tt.file, w)
			}
		}
	}
}
