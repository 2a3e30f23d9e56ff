package errs_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/taskagent/taskagent/internal/errs"
)

func TestKindSurvivesWrapping(t *testing.T) {
	base := errs.Field("title", "is required")
	wrapped := fmt.Errorf("create task: %w", base)
	if !errors.Is(wrapped, errs.Invalid) || errors.Is(wrapped, errs.Conflict) {
		t.Fatalf("errors.Is on %v: want Invalid only", wrapped)
	}
	if got := errs.KindOf(wrapped); got != errs.Invalid {
		t.Fatalf("KindOf = %q, want %q", got, errs.Invalid)
	}
	// A kind wrapped directly, without an *Error, is found too.
	if got := errs.KindOf(fmt.Errorf("respond: %w: %w", errs.Unavailable, errors.New("timeout"))); got != errs.Unavailable {
		t.Fatalf("KindOf = %q, want %q", got, errs.Unavailable)
	}
	if got := errs.KindOf(nil); got != "" {
		t.Fatalf("KindOf(nil) = %q, want none", got)
	}
	if got := errs.KindOf(errors.New("disk on fire")); got != errs.Internal {
		t.Fatalf("KindOf(plain) = %q, want internal", got)
	}
}

func TestPublicLeaksNothingInternal(t *testing.T) {
	if got := errs.Public(errors.New("open /var/lib/secret.db: permission denied")); got.Kind != errs.Internal || got.Message != "internal error" {
		t.Fatalf("Public(plain) = %+v, want a bare internal error", got)
	}
	e := errs.Field("assignee", "is 300 bytes long")
	if got := errs.Public(fmt.Errorf("assign: %w", e)); got != e {
		t.Fatalf("Public = %+v, want the *Error itself", got)
	}
}

func TestErrorRoundTripsAsJSON(t *testing.T) {
	in := &errs.Error{Kind: errs.Conflict, Message: "task t is completed", Field: "status"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"code":"conflict","message":"task t is completed","field":"status"}` {
		t.Fatalf("JSON = %s", b)
	}
	var out errs.Error
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != *in || !errors.Is(&out, errs.Conflict) {
		t.Fatalf("round trip = %+v, want %+v", out, *in)
	}
}
