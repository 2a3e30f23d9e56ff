package chat

import (
	"strings"
	"unicode/utf8"

	"github.com/taskagent/taskagent/internal/errs"
)

// Append returns history with entries added at the end, keeping only the newest
// 2*maxExchanges entries (an exchange is a user message and its reply);
// maxExchanges <= 0 means DefaultMaxExchanges.
//
// The result never shares its backing array with history: a caller that appends to
// or edits the old slice, or to the new one, cannot change the other. That matters
// because the old history is what a failed turn must leave behind.
func Append(history []Entry, maxExchanges int, entries ...Entry) []Entry {
	if maxExchanges <= 0 {
		maxExchanges = DefaultMaxExchanges
	}
	limit := 2 * maxExchanges
	total := len(history) + len(entries)
	skip := max(total-limit, 0)

	out := make([]Entry, 0, total-skip)
	if skip < len(history) {
		out = append(out, history[skip:]...)
	}
	skip = max(skip-len(history), 0)
	return append(out, entries[skip:]...)
}

// ValidateContent checks a message a user sends: required, not only white space, at
// most MaxContentLen bytes, and valid UTF-8 (the history is stored and published as
// JSON, which would silently replace invalid bytes).
func ValidateContent(s string) error {
	switch {
	case s == "":
		return errs.Field("content", "is required")
	case len(s) > MaxContentLen:
		return errs.Field("content", "is %d bytes long; the limit is %d", len(s), MaxContentLen)
	case !utf8.ValidString(s):
		return errs.Field("content", "is not valid UTF-8")
	case strings.TrimSpace(s) == "":
		return errs.Field("content", "is blank")
	}
	return nil
}
