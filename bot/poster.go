package bot

import (
	"context"
	"encoding/json"
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
	// Metadata is Slack message metadata (an event type and a small JSON payload), invisible
	// to people and read back with conversations.history or .replies; a zero EventType sends
	// none. It names what a message is, so that a post can be found again: see Post.
	Metadata slack.SlackMetadata
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
	// ReadInterval is the average spacing of conversations.history and conversations.replies
	// calls, workspace-wide; 0 -> 1.2s (tier 3, 50/min for internal apps).
	ReadInterval time.Duration

	MaxRetries   int           // retries after a 5xx or network error; 0 -> 3; rate limits are retried until ctx ends
	RetryBackoff time.Duration // wait before the first such retry, doubled each time up to 30s; 0 -> 500ms

	// Now is the clock by which a post's lookup window is set (Slack stamps messages with its
	// own clock, about the same); nil means time.Now.
	Now func() time.Time
}

func (c PosterConfig) withDefaults() PosterConfig {
	if c.Now == nil {
		c.Now = time.Now
	}
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
	if c.ReadInterval <= 0 {
		c.ReadInterval = 1200 * time.Millisecond
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
	readBurst      = 10
	maxBackoff     = 30 * time.Second

	// readPage is the page size of conversations.history and .replies: Slack advises at
	// most 200.
	readPage = 200
	// clockSkew is how far Slack's clock, which stamps messages, may be from ours: a search
	// for a message just posted reads the history from this long before the post.
	clockSkew = 5 * time.Minute
)

// Poster sends messages to Slack. Posts and updates for one channel are sent
// one at a time in the order the calls were made, so a thread's replies keep
// their order; different channels proceed in parallel. Each call waits for the
// proactive rate limit, waits out a 429's Retry-After and sends the same
// message again, retries 5xx and network errors a few times, and returns
// anything else (invalid_blocks, channel_not_found, ...) at once.
//
// Slack has no idempotency key for chat.postMessage: after a 5xx or a broken
// connection Slack may have accepted the message. A message without metadata
// is sent again then and may appear twice; a message with metadata is first
// looked for (by its metadata, in its thread or the channel's recent history)
// and only sent again when it is not there.
//
// A Poster starts no goroutines; every call runs on its caller's goroutine.
type Poster struct {
	logger *slog.Logger
	api    *slack.Client
	cfg    PosterConfig

	update    *rate.Limiter // chat.update, tier 3
	ephemeral *rate.Limiter // chat.postEphemeral, tier 4
	read      *rate.Limiter // conversations.history and .replies, tier 3

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
		read:      rate.NewLimiter(rate.Every(cfg.ReadInterval), readBurst),
		lanes:     make(map[string]*lane),
	}
}

// Post posts m to channel (chat.postMessage) and returns the new message's ts.
// It fails with ctx's error if ctx ends first, and with Slack's error,
// wrapped, when Slack refuses the message for good.
//
// When m has metadata and an attempt failed in a way that leaves open whether
// Slack took the message (a 5xx, a broken connection), Post looks for a
// message with the same metadata before it sends again, and after the last
// attempt, and returns that message's ts if there is one: such a Post posts
// at most once. If the search itself fails, Post fails.
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
	findable := m.Metadata.EventType != ""
	if findable {
		opts = append(opts, slack.MsgOptionMetadata(m.Metadata))
	}
	var (
		ts        string
		uncertain bool // an attempt failed after Slack may have taken the message
		since     = p.cfg.Now().Add(-clockSkew)
	)
	// landed reports whether an uncertain attempt posted the message after all.
	landed := func(ctx context.Context) (bool, error) {
		found, err := p.find(ctx, channel, m.ThreadTS, since, m.Metadata)
		if err != nil {
			return false, fmt.Errorf("look for a message that may have been posted: %w", err)
		}
		if found != "" {
			p.logger.InfoContext(ctx, "message found posted after a failed attempt", "channel", channel, "event_type", m.Metadata.EventType)
			ts = found
		}
		return found != "", nil
	}
	err = p.do(ctx, "chat.postMessage", channel, l.post, func(ctx context.Context) error {
		if uncertain {
			if ok, err := landed(ctx); ok || err != nil {
				return err
			}
		}
		var err error
		_, ts, err = p.api.PostMessageContext(ctx, channel, opts...)
		if kind, _ := classify(err); kind == transient && findable {
			uncertain = true
		}
		return err
	})
	if err != nil && uncertain && ctx.Err() == nil {
		if ok, err2 := landed(ctx); ok {
			return ts, nil
		} else if err2 != nil {
			err = errors.Join(err, err2)
		}
	}
	if err != nil {
		return "", fmt.Errorf("post to %s: %w", channel, err)
	}
	return ts, nil
}

// Replies returns the thread of ts in channel as conversations.replies gives it, with the
// messages' metadata: the parent first, then the replies in posting order, every page read.
func (p *Poster) Replies(ctx context.Context, channel, ts string) ([]slack.Message, error) {
	var out []slack.Message
	err := p.replies(ctx, channel, ts, func(m slack.Message) bool {
		out = append(out, m)
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read thread %s in %s: %w", ts, channel, err)
	}
	return out, nil
}

// Find returns the ts of the first message found in channel that carries metadata md (the
// same event type and payload), or "" when there is none. It searches the thread of
// threadTS when that is not "" (conversations.replies), otherwise the channel's messages
// posted since oldest, newest first (conversations.history); it stops reading at the match.
func (p *Poster) Find(ctx context.Context, channel, threadTS string, oldest time.Time, md slack.SlackMetadata) (string, error) {
	ts, err := p.find(ctx, channel, threadTS, oldest, md)
	if err != nil {
		return "", fmt.Errorf("find %s in %s: %w", md.EventType, channel, err)
	}
	return ts, nil
}

func (p *Poster) find(ctx context.Context, channel, threadTS string, oldest time.Time, md slack.SlackMetadata) (string, error) {
	var found string
	match := func(m slack.Message) bool {
		if SameMetadata(m.Metadata, md) {
			found = m.Timestamp
			return false
		}
		return true
	}
	var err error
	if threadTS != "" {
		err = p.replies(ctx, channel, threadTS, match)
	} else {
		err = p.history(ctx, channel, oldest, match)
	}
	return found, err
}

// replies reads the thread of ts page by page and hands each message to each until it
// returns false.
func (p *Poster) replies(ctx context.Context, channel, ts string, each func(slack.Message) bool) error {
	params := &slack.GetConversationRepliesParameters{ChannelID: channel, Timestamp: ts, Limit: readPage, IncludeAllMetadata: true}
	for {
		var (
			msgs []slack.Message
			more bool
			next string
		)
		err := p.do(ctx, "conversations.replies", channel, p.read, func(ctx context.Context) error {
			var err error
			msgs, more, next, err = p.api.GetConversationRepliesContext(ctx, params)
			return err
		})
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if !each(m) {
				return nil
			}
		}
		if !more || next == "" {
			return nil
		}
		params.Cursor = next
	}
}

// history reads the channel's messages since oldest, newest first, page by page, and hands
// each to each until it returns false.
func (p *Poster) history(ctx context.Context, channel string, oldest time.Time, each func(slack.Message) bool) error {
	params := &slack.GetConversationHistoryParameters{ChannelID: channel, Limit: readPage, IncludeAllMetadata: true}
	if !oldest.IsZero() {
		params.Oldest = fmt.Sprintf("%d.%06d", oldest.Unix(), oldest.Nanosecond()/1000)
		params.Inclusive = true
	}
	for {
		var res *slack.GetConversationHistoryResponse
		err := p.do(ctx, "conversations.history", channel, p.read, func(ctx context.Context) error {
			var err error
			res, err = p.api.GetConversationHistoryContext(ctx, params)
			return err
		})
		if err != nil {
			return err
		}
		for _, m := range res.Messages {
			if !each(m) {
				return nil
			}
		}
		if !res.HasMore || res.ResponseMetaData.NextCursor == "" {
			return nil
		}
		params.Cursor = res.ResponseMetaData.NextCursor
	}
}

// SameMetadata reports whether two messages' metadata are the same: the same event type and
// payloads whose JSON is equal (a payload read back from Slack has float64 numbers where
// the posted one may have had ints).
func SameMetadata(a, b slack.SlackMetadata) bool {
	if a.EventType != b.EventType {
		return false
	}
	ja, err1 := json.Marshal(a.EventPayload)
	jb, err2 := json.Marshal(b.EventPayload)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// Update replaces the text and blocks of the message ts in channel
// (chat.update); a Message without blocks clears them, and its metadata, when
// set, replaces the message's. It shares the channel's order with Post.
// ThreadTS and Broadcast are not used.
func (p *Poster) Update(ctx context.Context, channel, ts string, m Message) error {
	l, err := p.acquire(ctx, channel)
	if err != nil {
		return fmt.Errorf("update %s in %s: %w", ts, channel, err)
	}
	defer p.release(channel, l)

	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...)}
	if m.Metadata.EventType != "" {
		opts = append(opts, slack.MsgOptionMetadata(m.Metadata))
	}
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

// Permanent reports whether err, returned by a Poster call, means Slack refused the call for
// good (message_not_found, channel_not_found, invalid_blocks, ...): sending it again would be
// refused again. Rate limits, 5xx, network errors and an ended context are not permanent.
func Permanent(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	kind, _ := classify(err)
	return kind == permanent
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
