package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"
)

// Message is one Slack message to post or update.
type Message struct {
	Text      string        // fallback / notification text; always sent
	Blocks    []slack.Block // optional Block Kit blocks
	ThreadTS  string        // reply in this thread ("" = top level)
	Broadcast bool          // reply_broadcast (only with ThreadTS)
}

// RespondOptions say how a response URL answer is shown.
type RespondOptions struct {
	InChannel       bool // visible to the channel; false = ephemeral, only the user sees it
	ReplaceOriginal bool // replace the message the interaction came from
}

// PosterConfig tunes a Poster. Zero values pick the defaults named on each field.
type PosterConfig struct {
	ChannelInterval time.Duration // average spacing of chat.postMessage per channel; 0 -> 1s (Slack's limit)
	Burst           int           // chat.postMessage calls per channel allowed back to back; 0 -> 3

	UpdateInterval    time.Duration // average spacing of chat.update, workspace-wide; 0 -> 1.2s (tier 3, 50/min)
	EphemeralInterval time.Duration // average spacing of chat.postEphemeral, workspace-wide; 0 -> 600ms (tier 4, 100/min)

	MaxRetries   int           // retries after a 5xx or network error; 0 -> 3; rate limits are retried until ctx ends
	RetryBackoff time.Duration // wait before the first such retry, doubled each time up to 30s; 0 -> 500ms
}

func (c PosterConfig) withDefaults() PosterConfig {
	if c.ChannelInterval <= 0 {
		c.ChannelInterval = time.Second
	}
	if c.Burst <= 0 {
		c.Burst = 3
	}
	if c.UpdateInterval <= 0 {
		c.UpdateInterval = 1200 * time.Millisecond
	}
	if c.EphemeralInterval <= 0 {
		c.EphemeralInterval = 600 * time.Millisecond
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 3
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 500 * time.Millisecond
	}
	return c
}

const (
	updateBurst    = 10
	ephemeralBurst = 20
	maxBackoff     = 30 * time.Second
)

// Poster sends messages to Slack. Posts and updates for one channel are sent
// one at a time in the order the calls were made, so a thread's replies keep
// their order; different channels proceed in parallel. Each call waits for the
// proactive rate limit, waits out a 429's Retry-After and sends the same
// message again, retries 5xx and network errors a few times, and returns
// anything else (invalid_blocks, channel_not_found, ...) at once.
//
// A retry after a 5xx or a broken connection may post a message twice if Slack
// had in fact accepted it: Slack has no idempotency key for chat.postMessage.
//
// A Poster starts no goroutines; every call runs on its caller's goroutine.
type Poster struct {
	logger *slog.Logger
	api    *slack.Client
	cfg    PosterConfig

	update    *rate.Limiter // chat.update, tier 3
	ephemeral *rate.Limiter // chat.postEphemeral, tier 4

	mu    sync.Mutex
	lanes map[string]*lane // by channel ID
}

// lane serialises the posts and updates of one channel, first come first
// served, and paces its chat.postMessage calls.
type lane struct {
	post    *rate.Limiter
	busy    bool            // a call holds the lane
	waiters []chan struct{} // calls waiting, oldest first; closed to hand the lane over
}

// NewPoster returns a Poster that sends through api with the bot token.
func NewPoster(logger *slog.Logger, api *slack.Client, cfg PosterConfig) *Poster {
	cfg = cfg.withDefaults()
	return &Poster{
		logger:    logger.With("component", "bot"),
		api:       api,
		cfg:       cfg,
		update:    rate.NewLimiter(rate.Every(cfg.UpdateInterval), updateBurst),
		ephemeral: rate.NewLimiter(rate.Every(cfg.EphemeralInterval), ephemeralBurst),
		lanes:     make(map[string]*lane),
	}
}

// Post posts m to channel (chat.postMessage) and returns the new message's ts.
// It fails with ctx's error if ctx ends first, and with Slack's error,
// wrapped, when Slack refuses the message for good.
func (p *Poster) Post(ctx context.Context, channel string, m Message) (string, error) {
	l, err := p.acquire(ctx, channel)
	if err != nil {
		return "", fmt.Errorf("post to %s: %w", channel, err)
	}
	defer p.release(channel, l)

	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false)}
	if len(m.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(m.Blocks...))
	}
	if m.ThreadTS != "" {
		opts = append(opts, slack.MsgOptionTS(m.ThreadTS))
		if m.Broadcast {
			opts = append(opts, slack.MsgOptionBroadcast())
		}
	}
	var ts string
	err = p.do(ctx, "chat.postMessage", channel, l.post, func(ctx context.Context) error {
		var err error
		_, ts, err = p.api.PostMessageContext(ctx, channel, opts...)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("post to %s: %w", channel, err)
	}
	return ts, nil
}

// Update replaces the text and blocks of the message ts in channel
// (chat.update); a Message without blocks clears them. It shares the
// channel's order with Post. ThreadTS and Broadcast are not used.
func (p *Poster) Update(ctx context.Context, channel, ts string, m Message) error {
	l, err := p.acquire(ctx, channel)
	if err != nil {
		return fmt.Errorf("update %s in %s: %w", ts, channel, err)
	}
	defer p.release(channel, l)

	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...)}
	err = p.do(ctx, "chat.update", channel, p.update, func(ctx context.Context) error {
		_, _, _, err := p.api.UpdateMessageContext(ctx, channel, ts, opts...)
		return err
	})
	if err != nil {
		return fmt.Errorf("update %s in %s: %w", ts, channel, err)
	}
	return nil
}

// Ephemeral shows m to user only, in channel (chat.postEphemeral). Ephemeral
// messages are not ordered with the channel's posts.
func (p *Poster) Ephemeral(ctx context.Context, channel, user string, m Message) error {
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false)}
	if len(m.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(m.Blocks...))
	}
	if m.ThreadTS != "" {
		opts = append(opts, slack.MsgOptionTS(m.ThreadTS))
	}
	err := p.do(ctx, "chat.postEphemeral", channel, p.ephemeral, func(ctx context.Context) error {
		_, err := p.api.PostEphemeralContext(ctx, channel, user, opts...)
		return err
	})
	if err != nil {
		return fmt.Errorf("ephemeral to %s in %s: %w", user, channel, err)
	}
	return nil
}

// Respond answers a slash command or an interaction through its response URL
// (valid 30 minutes, 5 uses). Response URLs are not rate limited per channel;
// 429s and 5xx are retried as for Post.
func (p *Poster) Respond(ctx context.Context, responseURL string, m Message, opts RespondOptions) error {
	err := p.do(ctx, "response_url", "", nil, func(ctx context.Context) error {
		return respond(ctx, p.api, responseURL, m, opts)
	})
	if err != nil {
		return fmt.Errorf("respond: %w", err)
	}
	return nil
}

// Pending returns how many posts and updates for channel are in flight or
// waiting their turn. A caller that finds its channel falling behind can fold
// several updates into one.
func (p *Poster) Pending(channel string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lanes[channel]
	if l == nil {
		return 0
	}
	n := len(l.waiters)
	if l.busy {
		n++
	}
	return n
}

// respond sends one message to a response URL through slack-go. Its error
// never shows the URL (see hideURL).
func respond(ctx context.Context, api *slack.Client, responseURL string, m Message, o RespondOptions) error {
	responseType := "ephemeral"
	if o.InChannel {
		responseType = slack.ResponseTypeInChannel
	}
	opts := []slack.MsgOption{
		slack.MsgOptionResponseURL(responseURL, responseType),
		slack.MsgOptionText(m.Text, false),
	}
	if len(m.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(m.Blocks...))
	}
	if m.ThreadTS != "" {
		opts = append(opts, slack.MsgOptionTS(m.ThreadTS))
	}
	if o.ReplaceOriginal {
		opts = append(opts, slack.MsgOptionReplaceOriginal(responseURL))
	}
	_, _, err := api.PostMessageContext(ctx, "", opts...)
	return hideURL(err, responseURL)
}

// hideURL returns err with secretURL redacted from its message. A response
// URL lets anyone holding it post for 30 minutes, and the errors of net/http
// (*url.Error) quote the URL they called, so the redaction happens here,
// where the error is made, not in every caller that might log it. The result
// still unwraps to the original kinds (*url.Error, slack.StatusCodeError, ...)
// for errors.Is and errors.As; a *url.Error at the top is replaced by a copy
// that carries the redacted URL.
func hideURL(err error, secretURL string) error {
	if err == nil || secretURL == "" {
		return err
	}
	shown := redactURL(secretURL)
	if ue, ok := err.(*url.Error); ok {
		c := *ue
		c.URL = redactURL(c.URL)
		err = &c
	}
	pairs := []string{secretURL, shown}
	if u, perr := url.Parse(secretURL); perr == nil && len(u.RequestURI()) > 1 {
		// Re-encoded by net/http, or the path and query alone: the secret too.
		pairs = append(pairs, u.String(), shown, u.RequestURI(), "/"+redacted)
	}
	return &urlHidden{err: err, r: strings.NewReplacer(pairs...)}
}

// redactURL keeps a URL's scheme and host and hides the rest:
// "https://hooks.slack.com/REDACTED".
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return redacted
	}
	return u.Scheme + "://" + u.Host + "/" + redacted
}

// urlHidden is an error whose message has a secret URL redacted.
type urlHidden struct {
	err error
	r   *strings.Replacer // the URL, whole or its path alone, to its redacted form
}

func (e *urlHidden) Error() string { return e.r.Replace(e.err.Error()) }

func (e *urlHidden) Unwrap() error { return e.err }

// acquire waits for channel's lane, in call order.
func (p *Poster) acquire(ctx context.Context, channel string) (*lane, error) {
	p.mu.Lock()
	l := p.lanes[channel]
	if l == nil {
		l = &lane{post: rate.NewLimiter(rate.Every(p.cfg.ChannelInterval), p.cfg.Burst)}
		p.lanes[channel] = l
	}
	if !l.busy {
		l.busy = true
		p.mu.Unlock()
		return l, nil
	}
	turn := make(chan struct{})
	l.waiters = append(l.waiters, turn)
	p.mu.Unlock()

	select {
	case <-turn:
		return l, nil
	case <-ctx.Done():
		p.mu.Lock()
		if i := slices.Index(l.waiters, turn); i >= 0 {
			l.waiters = slices.Delete(l.waiters, i, i+1)
			p.mu.Unlock()
			return nil, ctx.Err()
		}
		p.mu.Unlock()
		// The lane was handed over as ctx ended: pass it on.
		p.release(channel, l)
		return nil, ctx.Err()
	}
}

// release hands channel's lane to the oldest waiter, or frees it. An idle lane
// whose limiter has refilled is forgotten, so the map holds only channels in
// recent use.
func (p *Poster) release(channel string, l *lane) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(l.waiters) > 0 {
		turn := l.waiters[0]
		l.waiters = slices.Delete(l.waiters, 0, 1)
		close(turn)
		return
	}
	l.busy = false
	for ch, other := range p.lanes {
		if !other.busy && other.post.Tokens() >= float64(other.post.Burst()) {
			delete(p.lanes, ch)
		}
	}
}

// retryKind is what to do after a failed call.
type retryKind int

const (
	permanent   retryKind = iota // return the error
	rateLimited                  // wait (Retry-After if given) and send again, until ctx ends
	transient                    // back off and send again, up to MaxRetries times
)

// do runs call after waiting for lim (nil = no limit) and retries it as
// classify says. method and channel only label logs.
func (p *Poster) do(ctx context.Context, method, channel string, lim *rate.Limiter, call func(context.Context) error) error {
	retries := 0
	backoff := p.cfg.RetryBackoff
	limited := 0
	for {
		if lim != nil {
			if err := lim.Wait(ctx); err != nil {
				return err
			}
		}
		err := call(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		kind, wait := classify(err)
		switch kind {
		case rateLimited:
			limited++
			if wait <= 0 {
				wait = min(time.Second<<min(limited-1, 5), maxBackoff)
			}
			p.logger.WarnContext(ctx, "rate limited, will resend", "method", method, "channel", channel, "retry_after", wait)
		case transient:
			if retries >= p.cfg.MaxRetries {
				return err
			}
			retries++
			wait = backoff
			backoff = min(2*backoff, maxBackoff)
			p.logger.WarnContext(ctx, "slack call failed, will retry", "method", method, "channel", channel, "attempt", retries, "err", err, "dur", wait)
		default:
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (while waiting to retry after: %v)", ctx.Err(), err)
		}
	}
}

// classify sorts a Slack call's error into permanent, rate-limited (with the
// wait Slack asked for, 0 if it did not say) or transient.
func classify(err error) (retryKind, time.Duration) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return permanent, 0
	}
	if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok {
		return rateLimited, max(rl.RetryAfter, time.Second)
	}
	if se, ok := errors.AsType[slack.StatusCodeError](err); ok {
		switch {
		case se.Code == http.StatusTooManyRequests:
			return rateLimited, 0
		case se.Code >= 500:
			return transient, 0
		}
		return permanent, 0
	}
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); ok {
		switch se.Err {
		case "ratelimited", "rate_limited":
			return rateLimited, 0
		case "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return transient, 0
		}
		return permanent, 0
	}
	if _, ok := errors.AsType[*url.Error](err); ok {
		return transient, 0
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return transient, 0
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return transient, 0
	}
	return permanent, 0
}
