package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/taskagent/taskagent/internal/errs"
)

// Kinds only the HTTP layer has: they describe how a request was sent, which the
// rest of taskagent never sees.
const (
	kindUnsupportedMediaType errs.Kind = "unsupported_media_type"
	kindMethodNotAllowed     errs.Kind = "method_not_allowed"
)

// statusOf maps every error kind to its HTTP status. It is the only place that
// does: handlers return errors with kinds and writeError looks them up here. A kind
// missing from the map is answered as internal.
var statusOf = map[errs.Kind]int{
	errs.Invalid:             http.StatusBadRequest,
	errs.NotFound:            http.StatusNotFound,
	errs.Conflict:            http.StatusConflict,
	errs.Unauthorized:        http.StatusUnauthorized,
	errs.TooLarge:            http.StatusRequestEntityTooLarge,
	errs.Unavailable:         http.StatusServiceUnavailable,
	errs.TooBusy:             http.StatusTooManyRequests,
	errs.Internal:            http.StatusInternalServerError,
	kindUnsupportedMediaType: http.StatusUnsupportedMediaType,
	kindMethodNotAllowed:     http.StatusMethodNotAllowed,
}

// errorBody is the JSON body of every error response:
// {"error": {"code": "not_found", "message": "...", "field": "..."}}.
type errorBody struct {
	Error *errs.Error `json:"error"`
}

// writeError answers r with err. Errors with a kind go to the client as they are
// (they were written for it); anything else is a bug or an unexpected failure,
// logged here in full, once, and answered with a message that reveals nothing.
// Handlers return errors rather than logging them, so this is the one log line.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if isContextErr(err) && errs.KindOf(err) == errs.Internal {
		// The client went away or a deadline passed while a service worked; nothing
		// is broken, and a client that is still there may retry.
		s.log.DebugContext(r.Context(), "request ended early", "method", r.Method, "path", r.URL.Path, "err", err)
		s.writeErrorBody(w, http.StatusServiceUnavailable, &errs.Error{Kind: errs.Unavailable, Message: "the request was cancelled or timed out"})
		return
	}
	pub := publicOnly(err)
	if pub.Kind == errs.Internal {
		s.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if pub.Kind == errs.TooBusy {
		w.Header().Set("Retry-After", "1")
	}
	s.writeErrorBody(w, statusOf[pub.Kind], pub)
}

// publicOnly is the part of err a client may see: errs.Public, except that an
// Internal *errs.Error, whose message may name paths or hosts, and a kind this layer
// does not know, become a bare internal error.
func publicOnly(err error) *errs.Error {
	pub := errs.Public(err)
	if _, ok := statusOf[pub.Kind]; !ok || pub.Kind == errs.Internal {
		return internalError()
	}
	return pub
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// writeErrorBody writes e with status, without logging.
func (s *Server) writeErrorBody(w http.ResponseWriter, status int, e *errs.Error) {
	s.writeJSON(w, status, errorBody{Error: e})
}

// writeJSON writes v as the JSON body of a response with status.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	// Marshal before writing the header, so a value that cannot be encoded still
	// gets an honest status.
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode response", "type", fmt.Sprintf("%T", v), "err", err)
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: internalError()})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // a failed write means the client left; nothing to do
}

func internalError() *errs.Error {
	return &errs.Error{Kind: errs.Internal, Message: "internal error"}
}

func errNoRoute(method, path string) error {
	return errs.E(errs.NotFound, "no route for %s %s", method, path)
}

func errMethodNotAllowed(method, path string) error {
	return &errs.Error{Kind: kindMethodNotAllowed, Message: fmt.Sprintf("%s is not allowed on %s", method, path)}
}
