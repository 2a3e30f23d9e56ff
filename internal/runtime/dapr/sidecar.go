package dapr

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/taskagent/taskagent/internal/errs"
)

// sidecar calls daprd's HTTP API.
type sidecar struct {
	base  string // http://127.0.0.1:3500
	token string // DAPR_API_TOKEN, sent as dapr-api-token
	http  *http.Client
}

func newSidecar(httpPort int, token string) *sidecar {
	return &sidecar{
		base:  fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		token: token,
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
		}},
	}
}

// do sends a request to the sidecar and returns the status and body. Transport
// errors and 5xx answers from daprd itself are errs.Unavailable.
func (s *sidecar) do(ctx context.Context, method, path, contentType string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		if contentType == "" {
			contentType = "application/json"
		}
		req.Header.Set("Content-Type", contentType)
	}
	if s.token != "" {
		req.Header.Set("dapr-api-token", s.token)
	}
	res, err := s.http.Do(req)
	if err != nil {
		return 0, nil, errs.E(errs.Unavailable, "dapr sidecar: %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return 0, nil, errs.E(errs.Unavailable, "dapr sidecar: %s %s: %v", method, path, err)
	}
	return res.StatusCode, b, nil
}

// expect fails unless the sidecar answered with one of the ok statuses.
func (s *sidecar) expect(ctx context.Context, method, path, contentType string, body []byte, ok ...int) ([]byte, error) {
	status, b, err := s.do(ctx, method, path, contentType, body)
	if err != nil {
		return nil, err
	}
	for _, o := range ok {
		if status == o {
			return b, nil
		}
	}
	return nil, errs.E(errs.Unavailable, "dapr sidecar: %s %s: %d %s", method, path, status, strings.TrimSpace(string(b)))
}

func actorPath(actorType, actorID string) string {
	return "/v1.0/actors/" + url.PathEscape(actorType) + "/" + url.PathEscape(actorID)
}

// getState reads one actor state key; nil when it is absent.
func (s *sidecar) getState(ctx context.Context, actorType, actorID, key string) ([]byte, error) {
	status, b, err := s.do(ctx, http.MethodGet, actorPath(actorType, actorID)+"/state/"+url.PathEscape(key), "", nil)
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusNoContent || (status == http.StatusOK && len(b) == 0):
		return nil, nil
	case status == http.StatusOK:
		return b, nil
	}
	return nil, errs.E(errs.Unavailable, "dapr sidecar: read state %q of %s/%s: %d %s", key, actorType, actorID, status, strings.TrimSpace(string(b)))
}

// stateOp is one operation of an actor state transaction.
type stateOp struct {
	Operation string         `json:"operation"` // upsert or delete
	Request   stateOpRequest `json:"request"`
}

type stateOpRequest struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value,omitempty"`
}

// saveState applies ops to the actor's state in one transaction.
func (s *sidecar) saveState(ctx context.Context, actorType, actorID string, ops []stateOp) error {
	body, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	_, err = s.expect(ctx, http.MethodPost, actorPath(actorType, actorID)+"/state", "", body, http.StatusNoContent, http.StatusOK)
	return err
}

// reminderRequest is the body of a reminder registration.
type reminderRequest struct {
	DueTime string          `json:"dueTime"`
	Period  string          `json:"period,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (s *sidecar) setReminder(ctx context.Context, actorType, actorID, name string, r reminderRequest) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = s.expect(ctx, http.MethodPost, actorPath(actorType, actorID)+"/reminders/"+url.PathEscape(name), "", body, http.StatusNoContent, http.StatusOK)
	return err
}

func (s *sidecar) deleteReminder(ctx context.Context, actorType, actorID, name string) error {
	_, err := s.expect(ctx, http.MethodDelete, actorPath(actorType, actorID)+"/reminders/"+url.PathEscape(name), "", nil, http.StatusNoContent, http.StatusOK, http.StatusNotFound)
	return err
}

// invoke calls an actor method through the sidecar and returns the app's answer.
func (s *sidecar) invoke(ctx context.Context, actorType, actorID, method string, input []byte) ([]byte, error) {
	if input == nil {
		input = []byte("null")
	}
	status, b, err := s.do(ctx, http.MethodPut, actorPath(actorType, actorID)+"/method/"+url.PathEscape(method), "", input)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, errs.E(errs.Unavailable, "dapr sidecar: invoke %s/%s.%s: %d %s", actorType, actorID, method, status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// publish sends a CloudEvent to a topic of the pub/sub component.
func (s *sidecar) publish(ctx context.Context, pubsub, topic string, cloudEvent []byte) error {
	_, err := s.expect(ctx, http.MethodPost, "/v1.0/publish/"+url.PathEscape(pubsub)+"/"+url.PathEscape(topic),
		"application/cloudevents+json", cloudEvent, http.StatusNoContent, http.StatusOK)
	return err
}

// schedulerRemindersFeature is the Dapr 1.14 preview feature that keeps actor
// reminders in the Scheduler service, one job each, instead of the state store.
const schedulerRemindersFeature = "SchedulerReminders"

// features returns the preview features daprd runs with (the enabledFeatures
// of its metadata).
func (s *sidecar) features(ctx context.Context) ([]string, error) {
	b, err := s.expect(ctx, http.MethodGet, "/v1.0/metadata", "", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var md struct {
		EnabledFeatures []string `json:"enabledFeatures"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, errs.E(errs.Unavailable, "dapr sidecar: metadata: %v", err)
	}
	return md.EnabledFeatures, nil
}

// healthy reports whether the sidecar is up and its components are loaded.
func (s *sidecar) healthy(ctx context.Context) error {
	_, err := s.expect(ctx, http.MethodGet, "/v1.0/healthz/outbound", "", nil, http.StatusNoContent, http.StatusOK)
	return err
}
