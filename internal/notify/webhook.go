package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/taskagent/taskagent/internal/errs"
)

// DefaultTimeout bounds one delivery attempt when no timeout is configured. It is
// short because the workflow retries with backoff: a receiver that has not answered in
// five seconds is better treated as down than waited on.
const DefaultTimeout = 5 * time.Second

const (
	// maxErrorBody is how much of a failed response goes into the error message:
	// enough for a receiver's one-line reason, not enough to flood logs.
	maxErrorBody = 512
	// maxDrain is how much of a response is read and thrown away so that the
	// connection can be reused; a bigger body costs a new connection instead.
	maxDrain = 64 << 10
)

// Webhook delivers a notification as an HTTP POST of its JSON to a fixed URL, with an
// Idempotency-Key header carrying Notification.ID so that the receiver can drop the
// duplicates that at-least-once delivery produces.
type Webhook struct {
	url    string // as configured, credentials included: used for requests only
	shown  string // without credentials: used in errors and status
	client *http.Client
}

// NewWebhook returns a Webhook that posts to rawURL, giving up on an attempt after
// timeout (DefaultTimeout when not positive). It returns errs.Invalid unless rawURL is
// an absolute http or https URL with a host: a bad URL is a configuration error, better
// reported at start-up than at the first task.
func NewWebhook(rawURL string, timeout time.Duration) (*Webhook, error) {
	u, err := parseWebhookURL(rawURL)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Webhook{
		url:   u.String(),
		shown: redactURL(u),
		client: &http.Client{
			Timeout: timeout,
			// A redirected POST turns into a GET without a body; the receiver would
			// never see the notification. Report the redirect instead (as Invalid,
			// below): the configured URL is wrong.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

func parseWebhookURL(rawURL string) (*url.URL, error) {
	if strings.TrimSpace(rawURL) == "" {
		return nil, errs.Field("url", "is required for a webhook notifier")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the URL, which may hold credentials: keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, errs.Field("url", "cannot parse: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errs.Field("url", "must be http or https, got %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errs.Field("url", "has no host")
	}
	return u, nil
}

// redactURL drops what commonly holds secrets: user info, the query (tokens) and the
// fragment. The path stays: it is what tells an operator which endpoint it is.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	c.RawFragment = ""
	return c.String()
}

// Name returns "webhook".
func (w *Webhook) Name() string { return KindWebhook }

// URL returns the target URL without credentials, query or fragment.
func (w *Webhook) URL() string { return w.shown }

// Notify posts n. A 2xx response means delivered. Network errors, timeouts, 408, 429
// and 5xx responses are errs.Unavailable; other responses (4xx, 3xx) are errs.Invalid:
// the receiver rejected this notification or the URL is wrong, and sending it again
// would be rejected again.
func (w *Webhook) Notify(ctx context.Context, n Notification) error {
	if err := n.Validate(); err != nil {
		return err
	}
	body, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode notification %s: %w", n.ID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: build request: %w", w.shown, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Idempotency-Key", n.ID)
	req.Header.Set("User-Agent", "taskagent")

	resp, err := w.client.Do(req)
	if err != nil {
		return w.transportError(ctx, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		_ = resp.Body.Close()
	}()
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	reason := errorBody(resp.Body)
	kind := errs.Invalid
	if code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 {
		kind = errs.Unavailable
	}
	msg := fmt.Sprintf("webhook %s: %s", w.shown, resp.Status)
	if code >= 300 && code < 400 {
		msg += " (redirects are not followed: configure the final URL)"
	}
	if reason != "" {
		msg += ": " + reason
	}
	return errs.E(kind, "%s", msg)
}

// transportError classifies an error from the HTTP client: whatever it is, no
// response came back, so the outcome is unknown and another attempt may work. The
// cause stays in the chain (errors.Is(err, context.Canceled) works) but the client's
// *url.Error is unwrapped, because it repeats the URL with its query.
func (w *Webhook) transportError(ctx context.Context, err error) error {
	var what string
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		what = "canceled"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		what = "timed out"
	default:
		what = "no response"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%w: %w", errs.E(errs.Unavailable, "webhook %s: %s", w.shown, what), err)
}

// errorBody reads the start of a failed response for the error message, as one line
// of printable text: a receiver's body is untrusted input bound for logs.
func errorBody(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, maxErrorBody))
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
