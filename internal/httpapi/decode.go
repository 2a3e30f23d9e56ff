package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/taskagent/taskagent/internal/errs"
	"github.com/taskagent/taskagent/internal/task"
)

// decodeJSON reads r's body, which must be exactly one JSON object, into v. Unknown
// fields are rejected so that a misspelt optional field ("asignee") fails loudly
// instead of being silently ignored. An empty body is an error unless optional.
func decodeJSON(r *http.Request, v any, optional bool) error {
	if err := checkContentType(r); err != nil {
		return err
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			if optional {
				return nil
			}
			return errs.E(errs.Invalid, "the request body is empty; send a JSON object")
		}
		return decodeError(err)
	}
	// Anything but white space after the object is an error: a client that sent
	// two objects, or a truncated concatenation, must not have half of it applied.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return decodeError(err)
		}
		return errs.E(errs.Invalid, "malformed JSON: data follows the JSON object")
	}
	return nil
}

// checkContentType accepts a body declared as JSON in UTF-8, or not declared at all:
// many scripted clients send none, and a body without a type is still only ever
// read as JSON. A body declared as anything else (a form, say) is refused.
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return &errs.Error{Kind: kindUnsupportedMediaType, Message: fmt.Sprintf("Content-Type %q is not supported; send application/json", ct)}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &errs.Error{Kind: kindUnsupportedMediaType, Message: fmt.Sprintf("charset %q is not supported; send UTF-8", cs)}
	}
	return nil
}

// decodeError explains why a body could not be decoded, naming the byte offset of
// a syntax error and the field of a wrong type, so that a client can fix its request
// without reading our code.
func decodeError(err error) error {
	var (
		tooBig *http.MaxBytesError
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return errs.E(errs.TooLarge, "the request body is over the limit of %d bytes", tooBig.Limit)
	case errors.As(err, &syntax):
		return errs.E(errs.Invalid, "malformed JSON at byte offset %d: %v", syntax.Offset, syntax)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errs.E(errs.Invalid, "malformed JSON: the body ends inside the JSON value")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errs.E(errs.Invalid, "the request body must be a JSON object, not %s", typ.Value)
		}
		if isInteger(typ.Type) && isWholeNumber(strings.TrimPrefix(typ.Value, "number ")) {
			return errs.Field(typ.Field, "is out of range")
		}
		return errs.Field(typ.Field, "must be %s, not %s", jsonKind(typ.Type), typ.Value)
	}
	// encoding/json reports an unknown field only as text; this is the one place we
	// read an error's message, and it is the standard library's stable wording.
	const unknown = `json: unknown field "`
	if msg := err.Error(); strings.HasPrefix(msg, unknown) {
		name := strings.TrimSuffix(strings.TrimPrefix(msg, unknown), `"`)
		return errs.Field(name, "is not a known field")
	}
	return errs.E(errs.Invalid, "cannot read the request body")
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a JSON value"
	}
	if isInteger(t) {
		return "an integer"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a JSON value"
}

func isInteger(t reflect.Type) bool {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// isWholeNumber reports whether s is a JSON number without fraction or exponent:
// one that failed to decode into an integer only because it is too big.
func isWholeNumber(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// pathID returns the path parameter name, checked as an id and reported as field
// when it is not one: a bad id is rejected before any actor is activated for it.
func pathID(r *http.Request, name, field string) (string, error) {
	id := r.PathValue(name)
	if err := task.ValidateID(field, id); err != nil {
		return "", err
	}
	return id, nil
}
