package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// maxRequestBytes caps the body of a request Slack posts to the request URL.
// Slack's largest, an interaction carrying its whole message, stays far below.
const maxRequestBytes = 1 << 20

// NewHTTP returns a Bot that receives the requests Slack posts to the app's
// request URL and hands them to d. Serve it (ServeHTTP) at POST /slack/events
// while Run runs. Every request must carry a valid v0 signature made with
// signingSecret; api is used for busy replies through response URLs.
func NewHTTP(logger *slog.Logger, api *slack.Client, d Dispatcher, cfg Config, signingSecret string) *Bot {
	b := newBot(logger, api, d, cfg)
	b.tr = &httpMode{b: b, secret: signingSecret}
	return b
}

// httpMode is the HTTP transport: Slack posts each request, the response is
// its ack.
type httpMode struct {
	b       *Bot
	secret  string
	serving atomic.Bool
}

func (t *httpMode) ready() bool { return t.serving.Load() }

// serve marks the bot ready for requests until ctx ends: they arrive through
// ServeHTTP on the HTTP server's goroutines.
func (t *httpMode) serve(ctx context.Context, _ *run) error {
	t.serving.Store(true)
	<-ctx.Done()
	t.serving.Store(false)
	return nil
}

// ServeHTTP serves Slack's request URL in HTTP mode (a Bot made by NewHTTP;
// any other answers 404). A request whose signature is missing, wrong or older
// than five minutes is answered 401 and changes nothing; so is one larger than
// 1 MiB (413) or one that is not a slash command, an interaction or an Events
// API callback (400). Slack's url_verification challenge is answered with the
// challenge, and its ssl_check with 200. Any other request is handed to the
// running bot like a Socket Mode envelope and answered 200 with what its ack
// would carry (a busy answer for a slash command when the queue is full),
// before its work, decoding its body included, starts. While Run is not
// running, requests are answered 503.
func (b *Bot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t, ok := b.tr.(*httpMode)
	if !ok {
		http.NotFound(w, r)
		return
	}
	t.serveHTTP(w, r)
}

func (t *httpMode) serveHTTP(w http.ResponseWriter, r *http.Request) {
	b := t.b
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		t.refuse(ctx, w, http.StatusMethodNotAllowed, "method not allowed", nil)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		status := http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			status = http.StatusRequestEntityTooLarge
		}
		t.refuse(ctx, w, status, "body unreadable", err)
		return
	}
	// The signature comes first: nothing of an unsigned request is read.
	sv, err := slack.NewSecretsVerifier(r.Header, t.secret)
	if err == nil {
		_, _ = sv.Write(body) // an HMAC's Write never fails
		err = sv.Ensure()
	}
	if err != nil {
		t.refuse(ctx, w, http.StatusUnauthorized, "bad signature", err)
		return
	}

	req, challenge, err := parseRequest(r, body)
	if err != nil {
		t.refuse(ctx, w, http.StatusBadRequest, "unreadable request", err)
		return
	}
	if challenge != "" {
		writeAck(w, map[string]string{"challenge": challenge})
		b.logger.InfoContext(ctx, "request URL verified")
		return
	}
	run := b.current.Load()
	if run == nil {
		http.Error(w, "cutoverbot is not running", http.StatusServiceUnavailable)
		return
	}
	if req.kind == "" {
		// Slack's ssl_check: acked, nothing to do.
		b.stats.received.Add(1)
		t.ack(ctx, w, nil)
		return
	}
	run.receive(ctx, req, func(payload any) { t.ack(ctx, w, payload) })
}

// refuse answers a request that is not handled, and counts it.
func (t *httpMode) refuse(ctx context.Context, w http.ResponseWriter, status int, reason string, err error) {
	t.b.stats.rejected.Add(1)
	t.b.logger.WarnContext(ctx, "slack request refused", "status", status, "reason", reason, "err", err)
	http.Error(w, http.StatusText(status), status)
}

// ack answers the request 200 with payload (nil: an empty body) and sends
// the answer on its way at once, before the request's work is queued.
func (t *httpMode) ack(ctx context.Context, w http.ResponseWriter, payload any) {
	if err := writeAck(w, payload); err != nil {
		t.b.stats.ackErrors.Add(1)
		t.b.logger.WarnContext(ctx, "ack failed", "err", err)
		return
	}
	t.b.stats.acked.Add(1)
}

// writeAck writes a 200 response with payload as JSON, or an empty one for
// nil, and flushes it.
func writeAck(w http.ResponseWriter, payload any) error {
	var body []byte
	if payload != nil {
		var err error
		if body, err = json.Marshal(payload); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(body); err != nil {
		return err
	}
	return http.NewResponseController(w).Flush()
}

// parseRequest tells what a signed request is and takes what the ack needs:
// a slash command (form fields), an interaction (form field payload, the
// JSON Socket Mode carries) or an Events API callback (JSON), with its
// event_id and retry headers. The body is decoded after the ack, in the
// worker (see request.payload). For url_verification it returns the
// challenge instead; Slack's ssl_check is returned with an empty kind.
func parseRequest(r *http.Request, body []byte) (req request, challenge string, err error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return request{}, "", err
	}
	switch mt {
	case "application/json":
		var outer struct {
			Type      string `json:"type"`
			Challenge string `json:"challenge"`
			EventID   string `json:"event_id"`
		}
		if err := json.Unmarshal(body, &outer); err != nil {
			return request{}, "", err
		}
		if outer.Type == slackevents.URLVerification {
			if outer.Challenge == "" {
				return request{}, "", errors.New("url_verification without a challenge")
			}
			return request{}, outer.Challenge, nil
		}
		retry, _ := strconv.Atoi(r.Header.Get("X-Slack-Retry-Num"))
		return request{kind: kindEvent, body: body, eventID: outer.EventID, retry: retry, retryReason: r.Header.Get("X-Slack-Retry-Reason")}, "", nil
	case "application/x-www-form-urlencoded":
		k, err := formKind(body)
		return request{kind: k, body: body}, "", err
	}
	return request{}, "", errors.New("content type " + mt + " is not one Slack sends")
}

// formKind tells what a form Slack posted is from its field names alone,
// without decoding a value: an interaction has the field payload, a slash
// command the field command, and Slack's check of the request URL's
// certificate ssl_check (returned as the empty kind).
func formKind(body []byte) (kind, error) {
	var payload, command, sslCheck bool
	for field := range bytes.SplitSeq(body, []byte("&")) {
		name, _, _ := bytes.Cut(field, []byte("="))
		switch string(name) {
		case "payload":
			payload = true
		case "command":
			command = true
		case "ssl_check":
			sslCheck = true
		}
	}
	switch {
	case payload:
		return kindInteraction, nil
	case command:
		return kindCommand, nil
	case sslCheck:
		return "", nil
	}
	return "", errors.New("form is neither a slash command nor an interaction")
}

// decodeBody reads the body of an HTTP request of kind k: a slash command, an
// interaction or an Events API callback, as Socket Mode delivers them.
func decodeBody(k kind, body []byte) (any, error) {
	if k == kindEvent {
		// Signed requests need no verification token.
		return slackevents.ParseEvent(body, slackevents.OptionNoVerifyToken())
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	if k == kindInteraction {
		var cb slack.InteractionCallback
		err := json.Unmarshal([]byte(form.Get("payload")), &cb)
		return cb, err
	}
	// slack-go reads a slash command from a request's parsed form.
	return slack.SlashCommandParse(&http.Request{Method: http.MethodPost, Form: form, PostForm: form})
}
