package slackemu

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HTTP mode: Slack posts each request to the app's request URL, signed with
// the app's signing secret, and takes the HTTP response as the ack.

// Forgery is a way of signing a request wrongly, for tests of the app's
// checks.
type Forgery int

const (
	// ForgeWrongSecret signs with a secret other than the app's.
	ForgeWrongSecret Forgery = iota + 1
	// ForgeStaleTimestamp signs correctly, with a timestamp six minutes
	// old: Slack's own requests are never that late, a replayed one is.
	ForgeStaleTimestamp
	// ForgeNoSignature leaves out X-Slack-Signature and
	// X-Slack-Request-Timestamp.
	ForgeNoSignature
)

// maxResponseBytes bounds how much of an app's answer is read.
const maxResponseBytes = 1 << 20

func newRequestClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil, // the app is on loopback
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        128,
			MaxIdleConnsPerHost: 128, // as many as deliveries in flight, so that none waits for a dial
			IdleConnTimeout:     90 * time.Second,
		},
		// Slack does not follow an app's redirects to its answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// SetRequestURL switches the app to HTTP mode: from now on slash commands,
// interactions and events are posted to url (e.g.
// "http://127.0.0.1:8080/slack/events"), signed with SigningSecret. ""
// switches back to Socket Mode.
func (s *Server) SetRequestURL(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requestURL = url
	s.notifyLocked()
}

// RequestURL returns the app's request URL, "" in Socket Mode.
func (s *Server) RequestURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requestURL
}

// SigningSecret returns the app's signing secret, with which requests to the
// request URL are signed.
func (s *Server) SigningSecret() string { return s.opts.SigningSecret }

// Forge makes the next n requests to the request URL signed wrongly, as f
// says; url_verification requests are always signed correctly.
func (s *Server) Forge(n int, f Forgery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgeN, s.forgery = n, f
}

// sign sets the request's signature headers as Slack does (v0: HMAC-SHA256
// over "v0:TIMESTAMP:BODY" with the signing secret), or signs wrongly as f
// says (0: correctly). Timestamps use the real clock, which the app checks
// them against.
func (s *Server) sign(h http.Header, body []byte, f Forgery) {
	secret, ts := s.opts.SigningSecret, time.Now()
	switch f {
	case ForgeNoSignature:
		return
	case ForgeWrongSecret:
		secret = "forged-" + secret
	case ForgeStaleTimestamp:
		ts = ts.Add(-6 * time.Minute)
	}
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:", stamp)
	mac.Write(body)
	h.Set("X-Slack-Request-Timestamp", stamp)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
}

// newSlackRequest returns a POST of body to url with Slack's headers, signed
// as f says.
func (s *Server) newSlackRequest(ctx context.Context, target, contentType string, body []byte, f Forgery) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	s.sign(req.Header, body, f)
	return req, nil
}

// httpBody encodes a delivery as Slack posts it: a slash command as form
// fields, an interaction as the form field payload, an event as JSON.
func httpBody(d *Delivery) (body []byte, contentType string) {
	const form = "application/x-www-form-urlencoded"
	switch d.Type {
	case "slash_commands":
		return []byte(d.form), form
	case "interactive":
		return []byte(url.Values{"payload": {string(d.Payload)}}.Encode()), form
	}
	return d.Payload, "application/json"
}

// exchangeTimes are the moments of one request's exchange, set by the HTTP
// client's trace hooks on its own goroutines.
type exchangeTimes struct {
	once    sync.Once
	written chan struct{} // closed once the request is written, or failed before
	mu      sync.Mutex
	sent    time.Time // zero until written
	first   time.Time // the response's first byte
}

func (x *exchangeTimes) wrote(at time.Time) {
	x.mu.Lock()
	if x.sent.IsZero() {
		x.sent = at
	}
	x.mu.Unlock()
	x.once.Do(func() { close(x.written) })
}

func (x *exchangeTimes) answered(at time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.first = at
}

func (x *exchangeTimes) get() (sent, first time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.sent, x.first
}

// deliverHTTP posts d to the request URL and returns once the request is
// written (bounded by ctx); the response, read in the background within the
// ack deadline, becomes d's ack.
func (s *Server) deliverHTTP(ctx context.Context, proto *Delivery, target string) (*Delivery, error) {
	body, contentType := httpBody(proto)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	d := proto.fresh(s.nextIDLocked("req-"))
	f := Forgery(0)
	if s.forgeN > 0 {
		s.forgeN--
		f = s.forgery
	}
	rctx, cancel := context.WithTimeout(context.Background(), s.opts.AckDeadline)
	s.inflight[d] = cancel
	x := &exchangeTimes{written: make(chan struct{})}
	s.wg.Go(func() { s.exchange(rctx, d, target, contentType, body, f, x) }) // under s.mu, so never after Close's Wait
	s.mu.Unlock()

	select {
	case <-x.written:
	case <-ctx.Done():
		cancel()
		return nil, fmt.Errorf("deliver %s to %s: %w", d.Type, target, ctx.Err())
	}
	d.Sent, _ = x.get()
	s.log.Info("request sent", "envelope_id", d.EnvelopeID, "type", d.Type, "url", target, "forgery", int(f))
	return d, nil
}

// exchange makes one request to the request URL and records its outcome as
// d's ack. It ends when ctx, which carries the ack deadline, ends.
func (s *Server) exchange(ctx context.Context, d *Delivery, target, contentType string, body []byte, f Forgery, x *exchangeTimes) {
	defer x.wrote(time.Time{}) // the request may have failed before it was written
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest:         func(httptrace.WroteRequestInfo) { x.wrote(time.Now()) },
		GotFirstResponseByte: func() { x.answered(time.Now()) },
	})
	ack, err := s.roundTrip(ctx, d, target, contentType, body, f, x)

	s.mu.Lock()
	defer s.mu.Unlock()
	if cancel := s.inflight[d]; cancel != nil {
		cancel()
		delete(s.inflight, d)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		s.failLocked(d, Ack{TimedOut: true, Error: "operation_timeout"})
		s.log.Warn("request not answered in time: operation_timeout", "envelope_id", d.EnvelopeID, "type", d.Type)
	case errors.Is(err, context.Canceled):
		// Close (or the sender giving up before the request went out):
		// like a pending envelope, it stays un-acked.
	case err != nil:
		s.failLocked(d, Ack{Error: "dispatch_failed"})
		s.log.Warn("request URL unreachable: dispatch_failed", "envelope_id", d.EnvelopeID, "err", err)
	case ack.Status != http.StatusOK:
		ack.Error = "http_service_error"
		if ack.Status >= 400 && ack.Status < 500 {
			ack.Error = "http_client_error"
		}
		s.failLocked(d, ack)
		s.log.Warn("request refused by the app", "envelope_id", d.EnvelopeID, "status", ack.Status, "err", ack.Error)
	default:
		d.ack = ack
		close(d.done)
		if ack.Payload != nil && d.Type == "slash_commands" {
			s.applyAckPayloadLocked(d, ack.Payload)
		}
		s.notifyLocked()
	}
}

// roundTrip posts body and reads the answer. Its error wraps ctx's when the
// deadline passed or the exchange was cancelled.
func (s *Server) roundTrip(ctx context.Context, d *Delivery, target, contentType string, body []byte, f Forgery, x *exchangeTimes) (Ack, error) {
	req, err := s.newSlackRequest(ctx, target, contentType, body, f)
	if err != nil {
		return Ack{}, err
	}
	if d.Attempt > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(d.Attempt))
		req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return Ack{}, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return Ack{}, err
	}
	sent, first := x.get()
	if first.IsZero() {
		first = time.Now()
	}
	ack := Ack{Status: resp.StatusCode}
	if !sent.IsZero() {
		ack.Latency = first.Sub(sent)
	}
	if resp.StatusCode == http.StatusOK && len(bytes.TrimSpace(answer)) > 0 {
		ack.Payload = answer
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
			ack.Payload, _ = json.Marshal(map[string]string{"text": string(answer)})
		}
	}
	if d.Type == "events_api" {
		ack.Payload = nil // Slack reads nothing from an event's answer
	}
	return ack, nil
}

// VerifyURL sends the url_verification request Slack sends when the app's
// request URL is set (in the app's Event Subscriptions), and returns nil once
// the app answered 200 with the challenge (as plain text, as JSON
// {"challenge": …} or as a form field). It returns an error naming what went
// wrong otherwise, such as the app not listening yet.
func (s *Server) VerifyURL(ctx context.Context) error {
	s.mu.Lock()
	target := s.requestURL
	challenge := s.nextIDLocked("challenge-")
	s.mu.Unlock()
	if target == "" {
		return errors.New("verify request URL: none set (Socket Mode)")
	}
	body, _ := json.Marshal(map[string]string{"token": "emulator-verification-token", "challenge": challenge, "type": "url_verification"})
	ctx, cancel := context.WithTimeout(ctx, s.opts.AckDeadline)
	defer cancel()
	req, err := s.newSlackRequest(ctx, target, "application/json", body, 0)
	if err != nil {
		return fmt.Errorf("verify request URL: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("verify request URL: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("verify request URL: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("verify request URL: the app answered %s", resp.Status)
	}
	var asJSON struct {
		Challenge string `json:"challenge"`
	}
	_ = json.Unmarshal(answer, &asJSON)
	form, _ := url.ParseQuery(string(answer))
	if got := strings.TrimSpace(string(answer)); got != challenge && asJSON.Challenge != challenge && form.Get("challenge") != challenge {
		return fmt.Errorf("verify request URL: the app answered %q, not the challenge", answer)
	}
	return nil
}
