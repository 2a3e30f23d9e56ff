// Package errs is taskagent's small error vocabulary. Every error that crosses a
// package boundary and that a caller must act on carries a Kind; callers test it with
// errors.Is(err, errs.NotFound) or errs.KindOf(err), never by reading the message.
//
// The vocabulary is deliberately tiny so that it survives transport: an *Error
// marshals to and from JSON, which is how actor errors cross a Dapr sidecar and how
// the HTTP API reports them.
package errs

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller should do about it.
type Kind string

// The kinds. Their string values are stable: they appear in HTTP error bodies and on
// the wire between a runtime and the actors it hosts.
const (
	Invalid      Kind = "invalid"      // the request is malformed or breaks a rule; do not retry
	NotFound     Kind = "not_found"    // the thing asked for does not exist
	Conflict     Kind = "conflict"     // the request contradicts current state (a bad transition, different data for an existing id)
	Unauthorized Kind = "unauthorized" // the caller did not prove who it is
	TooLarge     Kind = "too_large"    // a body or value is over an explicit limit
	Unavailable  Kind = "unavailable"  // a dependency is down or overloaded; retrying later may work
	TooBusy      Kind = "too_busy"     // over a load limit of this server; retry after a moment
	Internal     Kind = "internal"     // a bug or an unexpected failure; details stay in the logs
)

// Is lets a Kind stand as an errors.Is target: errors.Is(err, errs.NotFound).
func (k Kind) Error() string { return string(k) }

// Error is an error with a kind, a message meant for people, and optionally the name
// of the input field it is about.
type Error struct {
	Kind    Kind   `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Error implements error.
func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Is reports whether target is this error's Kind, so errors.Is(err, errs.Conflict)
// works through any amount of wrapping.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// E returns an *Error of kind k with a formatted message.
func E(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Field returns an Invalid *Error about the named input field.
func Field(field, format string, args ...any) error {
	return &Error{Kind: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of the first *Error in err's chain, or Internal when there
// is none. A nil error has no kind: KindOf(nil) is "".
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	for _, k := range []Kind{Invalid, NotFound, Conflict, Unauthorized, TooLarge, Unavailable} {
		if errors.Is(err, k) {
			return k
		}
	}
	return Internal
}

// Public returns the *Error that may be shown to a caller: err's own *Error when it
// has one, or a generic Internal error that leaks nothing.
func Public(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if k := KindOf(err); k != Internal {
		return &Error{Kind: k, Message: string(k)}
	}
	return &Error{Kind: Internal, Message: "internal error"}
}
