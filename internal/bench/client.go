package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// newClient returns a client that keeps a connection alive for every request the
// run has in flight, so the load measures the server and not TCP handshakes. It
// has no overall timeout: the event stream lasts the whole run, and every other
// request gets a deadline of its own.
func newClient(concurrency int) *http.Client {
	idle := concurrency + 8 // the workers, the event stream, the GET sampler, spare
	return &http.Client{Transport: &http.Transport{
		Proxy: nil, // loopback load: never through a proxy from the environment
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          2 * idle,
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // per-request contexts bound each call
		ExpectContinueTimeout: time.Second,
	}}
}

// call is one request's outcome.
type call struct {
	status int
	body   []byte
	dur    time.Duration // from sending the request to reading the whole answer
	err    error         // no answer: transport error, timeout, cancellation
	// retryAfter is a 429's Retry-After, at least a second.
	retryAfter time.Duration
}

// do sends one request with a JSON body (when body is not nil) and reads the whole
// answer, so the connection goes back to the pool. route names the request in the
// failure counts ("POST /tasks/process"). Answers 400 and above, and requests
// that got no answer, are counted as failures, except the status the caller
// handles itself (handled: a 404 from an optional endpoint, a 429 it retries;
// 0 for none) and anything after ctx was cancelled by the caller.
func (r *runner) do(ctx context.Context, method, path, route string, body any, handled int) call {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return call{err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.cfg.URL+path, rd)
	if err != nil {
		return call{err: err}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	res, err := r.client.Do(req)
	if err != nil {
		r.failed(parent, route, "error", err)
		return call{err: err, dur: time.Since(start)}
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	c := call{status: res.StatusCode, body: b, dur: time.Since(start)}
	if res.StatusCode == http.StatusTooManyRequests {
		c.retryAfter = time.Second
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 1 {
			c.retryAfter = time.Duration(min(s, 60)) * time.Second
		}
	}
	if err != nil {
		c.err = err
		r.failed(parent, route, "error", err)
		return c
	}
	if res.StatusCode >= 400 && res.StatusCode != handled {
		r.failed(parent, route, fmt.Sprint(res.StatusCode), errors.New(trim(string(b), 200)))
	}
	return c
}

// failed counts a failed request, unless it failed because the run is stopping:
// parent is the context the request was made under, before its own timeout. A
// request that ran out of its own time is the server's failure; one whose parent
// was cancelled (SIGINT, the run's timeout) is not.
func (r *runner) failed(parent context.Context, route, what string, err error) {
	if parent.Err() != nil {
		return
	}
	key := route + ": " + what
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures[key]++
	if what != "error" && what[0] == '5' {
		r.status5xx++
	}
	if len(r.failureExamples) < 5 {
		r.failureExamples = append(r.failureExamples, fmt.Sprintf("%s: %v", key, err))
	}
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
