package dapr

import (
	"testing"
	"time"
)

func TestDueTime(t *testing.T) {
	now := time.Date(2026, 11, 28, 9, 0, 0, 500_000_000, time.UTC)
	tests := []struct {
		name  string
		due   time.Time
		exact bool
		want  string
	}{
		{"past, seconds", now.Add(-time.Second), false, "0s"},
		{"now, exact", now, true, "0s"},
		{"within the second, rounded up", now.Add(200 * time.Millisecond), false, "2026-11-28T09:00:01Z"},
		{"on a second, kept", now.Add(1500 * time.Millisecond), false, "2026-11-28T09:00:02Z"},
		{"exact", now.Add(200 * time.Millisecond), true, "2026-11-28T09:00:00.7Z"},
		{"exact, other zone", now.Add(time.Hour).In(time.FixedZone("X", 3600)), true, "2026-11-28T10:00:00.5Z"},
	}
	for _, tt := range tests {
		if got := dueTime(tt.due, now, tt.exact); got != tt.want {
			t.Errorf("%s: dueTime(%v, exact %v) = %q, want %q", tt.name, tt.due, tt.exact, got, tt.want)
		}
	}
}
