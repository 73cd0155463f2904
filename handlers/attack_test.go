package handlers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/awsmgn"
	"github.com/cutoverbot/cutoverbot/clock"
	"github.com/cutoverbot/cutoverbot/notifier"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

// Attacks on the confirmation's promises: the bot's word equals MGN's truth, exactly one
// launch per confirmation, cards that end in a final state. Each test fails on the code it
// was written against; its comment says what breaks and why.

// attackHandler is a Handler configured as the rig's, but on aws and st.
func (r *rig) attackHandler(aws AWS, st Store) *Handler {
	api := slack.New(r.slack.BotToken(), slack.OptionAPIURL(r.slack.URL()))
	return New(slog.New(slog.NewTextHandler(r.t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		aws, r.poster, st, r.follower, api, Config{
			Channel:   migrationChannel,
			Operators: []string{operator, opsGroup, alice},
			Approvers: []string{alice, approverGroup},
			Clock:     r.clock,
		})
}

// lateProxy stands between the adapter and MGN. It forwards every request, except the first
// one to path: that one's client gets a 502 at once (the answer is lost on the way back, as
// from a load balancer whose backend is slow), and the request reaches MGN only when the
// test calls deliver, after the bot has looked for its job.
type lateProxy struct {
	url, target, path string

	mu     sync.Mutex
	held   bool
	header http.Header
	body   []byte
}

func newLateProxy(t *testing.T, target, path string) *lateProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &lateProxy{target: target, path: path}
	forward := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			p.mu.Lock()
			first := !p.held
			if first {
				p.held, p.header = true, r.Header.Clone()
				p.body, _ = io.ReadAll(r.Body)
			}
			p.mu.Unlock()
			if first {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// deliver sends the held request to MGN now and returns MGN's status code.
func (p *lateProxy) deliver(t *testing.T) int {
	t.Helper()
	p.mu.Lock()
	held, header, body := p.held, p.header, p.body
	p.mu.Unlock()
	if !held {
		t.Fatalf("no %s request was held", p.path)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.target+p.path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Finding: "nothing was launched" is concluded from three looks at MGN within OutcomeDelay*3
// (3 s in production) after an ambiguous answer (a 502 or the bot's own call timeout, a third
// of the lease). MGN may act on the request after that; the confirmation is then final as
// failed, the card says nothing was launched, and nothing ever looks again: the store and the
// card contradict MGN for good (the notifier even announces the job as started outside the
// bot, tagged with the card's confirmation).
func TestAttackLateJobAfterLostAnswer(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	p := newLateProxy(t, r.mgn.URL(), "/StartCutover")
	r.aws = awsmgn.New(aws.Config{Region: "eu-central-1", Credentials: aws.AnonymousCredentials{}},
		awsmgn.Options{MGNEndpoint: p.url, EC2Endpoint: r.mgn.URL(), Logger: slog.New(slog.DiscardHandler), OutcomeDelay: time.Millisecond})
	r.h = r.attackHandler(r.aws, r.store)
	card := requestCutover(t, r, operator)
	answer := r.click(bob, card.TS, render.ActionConfirm)
	if status := p.deliver(t); status != http.StatusAccepted {
		t.Fatalf("the held StartCutover reached MGN late: got %d, want 202", status)
	}
	jobs := r.mgn.Jobs()
	if len(jobs) != 1 {
		t.Fatalf("MGN jobs after the late StartCutover: got %d, want 1", len(jobs))
	}
	job := jobs[0].JobID
	// Any number of sweeps (of any replica) later:
	for range 3 {
		r.clock.Advance(time.Minute)
		r.sweep()
	}
	c, err := r.store.Confirmation(t.Context(), cardID0(t, card))
	if err != nil {
		t.Fatal(err)
	}
	if c.State != store.Launched || c.JobID != job {
		t.Errorf("confirmation while MGN runs %s for it: got %s job %q (error %q), want launched %s; bob was told %q",
			job, c.State, c.JobID, c.Error, job, answer)
	}
	lacks(t, "card while MGN runs the job", r.message(card.TS).PlainText(), "nothing was launched")
}

// flakyOutcomes is the real store whose next n recordings of a failed outcome fail, as a
// database does when its connection drops.
type flakyOutcomes struct {
	*store.Store
	mu      sync.Mutex
	n       int // failed outcomes still to refuse
	refused int
}

var errDBDown = errors.New("store: connection lost")

func (s *flakyOutcomes) CompleteConfirmation(ctx context.Context, id string, o store.Outcome, f store.Fence, now time.Time) error {
	s.mu.Lock()
	if o.State == store.Failed && s.n > 0 {
		s.n--
		s.refused++
		s.mu.Unlock()
		return errDBDown
	}
	s.mu.Unlock()
	return s.Store.CompleteConfirmation(ctx, id, o, f, now)
}

// Finding: when recording "nothing was launched" fails (a store error between the AWS call
// and the write), notLaunched logs the error and still tells the approver ":x: Nothing was
// launched … Ask again". The confirmation stays in progress under its lease, so a replica
// takes it over when the lease ends and, MGN having no job and the pre-flight passing again
// (a throttle, a lag spike are brief), starts the cutover nobody asked for any more.
func TestAttackNothingLaunchedThenLaunched(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		r := newRig(t, rigOptions{})
		r.store = openStore(t, dsn)
		st := &flakyOutcomes{Store: r.store, n: 1}
		r.h = r.attackHandler(r.aws, st)
		card := requestCutover(t, r, operator)
		r.mgn.Throttle("StartCutover", 1) // MGN refuses the call: nothing was launched, truly
		answer := r.click(bob, card.TS, render.ActionConfirm)
		if st.refused != 1 {
			t.Fatalf("the store refused %d failed outcomes, want 1: the fault was not met", st.refused)
		}
		told := strings.Contains(answer, "Nothing was launched")
		r.clock.Advance(lease)
		r.sweep()
		if n := len(r.mgn.Jobs()); told && n != 0 {
			t.Errorf("bob was told %q, and then the bot started %d cutover job(s) (StartCutover calls %d)",
				answer, n, r.mgn.Calls("StartCutover"))
		}
	})
}

// Finding: a card whose message is gone (deleted by someone, channel archived) is redrawn on
// every pass for ever: DrawCards queues it again after every failure, and the Run loop wakes
// on that. Each attempt spends one chat.update of the workspace-wide budget (about 50 a
// minute, shared with every card and thread parent), so one such card alone uses it up.
func TestAttackGoneCardRedrawnForever(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	id := cardID0(t, card)
	if err := r.store.SetConfirmationMessage(t.Context(), id, migrationChannel, "1700000000.000001"); err != nil {
		t.Fatal(err)
	}
	r.h.Interaction(t.Context(), r.clickOn(operator, card.TS, render.ActionCancel))
	before := r.slack.Calls("chat.update")
	for range 10 {
		_ = r.h.Sweep(t.Context()) // the card's error is expected
	}
	if n := r.slack.Calls("chat.update") - before; n > 2 {
		t.Errorf("chat.update calls for one card whose message is gone, over 10 sweeps at one instant: got %d, want at most 2", n)
	}
}

// Finding: while MGN cannot be asked about a launch whose answer was lost, every sweep (every
// 2 s by default) takes the confirmation over again, fails to ask, audits another "unknown"
// entry and sends the approver another ephemeral "Update on the cutover you confirmed: AWS's
// answer was lost…": dozens of identical messages a minute.
func TestAttackUnknownOutcomeRepeated(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{lose: []string{}})
	card := requestCutover(t, r, operator)
	var started bool
	var mu sync.Mutex
	r.loseIf(func(path string) bool {
		mu.Lock()
		defer mu.Unlock()
		switch path {
		case "/StartCutover":
			started = true
			return true
		case "/DescribeJobs":
			return started
		}
		return false
	})
	r.click(bob, card.TS, render.ActionConfirm)
	before := len(r.slack.Ephemerals(bob))
	for range 5 {
		r.clock.Advance(2 * time.Second)
		_ = r.h.Sweep(t.Context())
	}
	if n := len(r.slack.Ephemerals(bob)) - before; n > 1 {
		t.Errorf("ephemeral updates to bob over 5 sweeps while MGN cannot be asked: got %d, want at most 1 (nothing new to say)", n)
	}
}

// Finding: leases are judged by each replica's own clock (Config.Now): the owner writes
// lease_until from its clock, and TakeOverConfirmations compares it with the taker's. A
// replica whose clock runs a lease (15 s) ahead of the owner's takes over a confirmation
// whose owner is alive and inside its StartCutover call; MGN shows no job yet, so it starts
// the cutover too. MGN's one-job-per-server rule refuses the second call, but the
// confirmation got two StartCutover calls (issue 12: exactly one per confirmation).
func TestAttackClockSkewDoubleStart(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		r := newRig(t, rigOptions{})
		// Two replicas, each with its own handle on one database.
		r.store = openStore(t, dsn)
		r.h = r.attackHandler(r.aws, r.store)
		card := requestCutover(t, r, operator)
		ahead := New(slog.New(slog.DiscardHandler), r.aws, r.poster, openStore(t, dsn), r.follower, nil, Config{
			Channel: migrationChannel, Operators: []string{operator, alice}, Approvers: []string{alice, bob},
			Clock: skewed{r.clock, lease + 5*time.Second}, Holder: "replica-ahead",
		})
		r.mgn.SetLatency("StartCutover", 2*time.Second) // MGN takes a moment to answer
		done := r.clickUntil(bob, card, store.Calling)  // the owner is inside its StartCutover call
		if err := ahead.Sweep(t.Context()); err != nil {
			t.Logf("sweep of the replica whose clock is ahead: %v", err)
		}
		<-done
		if n, jobs := r.mgn.Calls("StartCutover"), len(r.mgn.Jobs()); n != 1 {
			t.Errorf("StartCutover calls for one confirmation, its owner alive, another replica's clock %v ahead: got %d (%d jobs), want 1",
				lease+5*time.Second, n, jobs)
		}
	})
}

// skewed is a clock d ahead of another.
type skewed struct {
	*clock.Manual
	d time.Duration
}

func (c skewed) Now() time.Time { return c.Manual.Now().Add(c.d) }

// openStore opens the store at dsn for the test.
func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// flakyCardMessage is the real store whose next n SetConfirmationMessage calls fail.
type flakyCardMessage struct {
	*store.Store
	mu sync.Mutex
	n  int
}

func (s *flakyCardMessage) SetConfirmationMessage(ctx context.Context, id, channel, ts string) error {
	s.mu.Lock()
	fail := s.n > 0
	if fail {
		s.n--
	}
	s.mu.Unlock()
	if fail {
		return errDBDown
	}
	return s.Store.SetConfirmationMessage(ctx, id, channel, ts)
}

// Finding: when recording where a card was posted fails (a store error right after
// chat.postMessage), requestConfirmation only logs a warning. The card is in the channel with
// its buttons, and a click on it works (its button carries the confirmation's ID), but the
// store knows no message to edit: redraw skips it and StaleCards leaves out cards without a
// ts. After the cutover started, the card still says "Waiting for an approver" and offers
// [Confirm cutover], for good.
func TestAttackCardNeverFinalWhenItsTSIsLost(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.h = r.attackHandler(r.aws, &flakyCardMessage{Store: r.store, n: 1})
	card := requestCutover(t, r, operator)
	contains(t, "confirm", r.click(bob, card.TS, render.ActionConfirm), "The cutover of db01 started")
	for range 3 {
		r.clock.Advance(time.Minute)
		r.sweep()
	}
	if text := r.message(card.TS).PlainText(); strings.Contains(text, "[Confirm cutover]") || !strings.Contains(text, "— job `mgnjob-") {
		t.Errorf("card after the cutover started: got %q, want the job named and no Confirm button", text)
	}
}

// Finding: the cutover's thread is opened in the background (redraw -> thread), and thread
// calls Follow only when the store has no record of the job. When the notifier's watcher
// lists MGN's jobs in between (every minute; the redraw may wait many seconds for Slack's
// rate limits), it records the job as started outside the bot, from its MGN tag. redraw then
// finds that record, links its thread and never calls Follow, which would have put the
// requester and approvers in place of the tag: the thread says "tagged as requested by …"
// and names no approver, against the store's own confirmation.
func TestAttackWatcherFirstLosesApprovers(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	n, err := notifier.New(slog.New(slog.DiscardHandler), r.aws, r.poster, r.store, notifier.Config{Channel: migrationChannel, Clock: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	r.h = New(slog.New(slog.DiscardHandler), r.aws, r.poster, r.store, n, slack.New(r.slack.BotToken(), slack.OptionAPIURL(r.slack.URL())), Config{
		Channel: migrationChannel, Operators: []string{operator, opsGroup, alice}, Approvers: []string{alice, approverGroup}, Clock: r.clock,
	})
	card := requestCutover(t, r, operator)
	r.h.Interaction(t.Context(), r.clickOn(bob, card.TS, render.ActionConfirm)) // the card is redrawn later
	if err := n.WatchOnce(t.Context()); err != nil {
		t.Logf("watch: %v", err)
	}
	r.drawCards()
	jobs := r.mgn.Jobs()
	if len(jobs) != 1 {
		t.Fatalf("jobs: got %d, want 1", len(jobs))
	}
	got, err := r.store.Job(t.Context(), jobs[0].JobID)
	if err != nil {
		t.Fatal(err)
	}
	if got.RequestedBy != operator || !slices.Equal(got.ApprovedBy, []string{bob}) {
		t.Errorf("job record of a cutover the bot launched: got requested by %q, approved by %v, tagged by %q; want requested by %s, approved by %s (from the confirmation)",
			got.RequestedBy, got.ApprovedBy, got.TaggedBy, operator, bob)
	}
}

// Finding: the confirmation card is posted without message metadata, so when Slack takes the
// post and its answer is lost (a 503 from a load balancer), the poster sends it again and the
// channel holds two cards of one confirmation. The store records only the second; the first
// keeps its Confirm and Cancel buttons and "Waiting for an approver" after the cutover
// started, for good (cards must always end in a final state).
func TestAttackDuplicateCardNeverFinal(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.slack.LoseReplies("chat.postMessage", 1)
	requestCutover(t, r, operator)
	card := r.lastCard()
	contains(t, "confirm", r.click(bob, card.TS, render.ActionConfirm), "The cutover of db01 started")
	for range 3 {
		r.clock.Advance(time.Minute)
		r.sweep()
	}
	for _, m := range r.channelMessages() {
		if text := m.PlainText(); strings.Contains(text, "Cutover requested") && strings.Contains(text, "[Confirm cutover]") {
			t.Errorf("card %s after the cutover started: got %q, want it final (the job named, no buttons)", m.TS, text)
		}
	}
}

// barrierStore is the real store whose Confirmations calls return only once two of them have
// read (or after a few seconds): two requests (on two replicas, or two workers) both look for
// a waiting card before either stores its own, as happens when they arrive together.
type barrierStore struct {
	*store.Store
	mu      sync.Mutex
	arrived int
	both    chan struct{}
}

func (s *barrierStore) Confirmations(ctx context.Context, state store.ConfirmationState) ([]store.Confirmation, error) {
	cs, err := s.Store.Confirmations(ctx, state)
	s.mu.Lock()
	if s.arrived++; s.arrived == 2 {
		close(s.both)
	}
	s.mu.Unlock()
	select {
	case <-s.both:
	case <-time.After(3 * time.Second):
	}
	return cs, err
}

// Finding: "a second request for a server that already has a card waiting is pointed at
// that card" is a read (waiting) followed by a separate insert (CreateConfirmation), so two
// requests that arrive together both find no card and both post one: two pending cutover
// cards for db01, each of which an approver may confirm (for a finalize, two concurrent
// confirmations send FinalizeCutover twice for one server).
func TestAttackTwoCardsForOneServer(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	st := &barrierStore{Store: r.store, both: make(chan struct{})}
	r.h = r.attackHandler(r.aws, st)
	a, b := r.command(operator, migrationChannel, "launch db01 cutover"), r.command(alice, migrationChannel, "launch db01 cutover")
	var wg sync.WaitGroup
	for _, cmd := range []slack.SlashCommand{a, b} {
		wg.Go(func() { r.h.SlashCommand(t.Context(), cmd) })
	}
	wg.Wait()
	pending, err := r.store.Confirmations(t.Context(), store.Pending)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 {
		t.Errorf("pending cutover confirmations for db01 after two requests at once: got %d, want 1 (the second pointed at the first)", len(pending))
	}
}
