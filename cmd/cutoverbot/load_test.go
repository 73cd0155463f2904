package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

// clickLoad is a storm of confirm clicks on many cutover cards, handled by two replicas of the
// real bot on one PostgreSQL database: approvers' clicks, a few by someone who may not
// confirm, and redeliveries of clicks already sent.
type clickLoad struct {
	cards, clicks int
	// kill SIGKILLs one replica when half the clicks were sent; the rest go to the other.
	kill bool
	// inFlight bounds the clicks sent and not yet acked; with paced, the clicks sent and not
	// yet answered: inFlight people, each clicking again once the last click was answered.
	inFlight int
	paced    bool
}

// clickLoadResult is what a clickLoad did.
type clickLoadResult struct {
	launched   int           // cards whose cutover MGN started
	duplicates int           // StartCutover calls beyond one per launched card
	lost       int           // cards that did not end in a final state naming a job or saying nothing launched
	notStarted int           // cards that ended saying nothing was launched
	unanswered int           // clicks answered by nobody (of those sent to a replica that stayed up)
	delivered  int           // clicks Slack delivered (a card without buttons takes none)
	p50, p99   time.Duration // until a click was first answered
	// outcomeP50 and outcomeP99: until a deciding click was told what MGN did (the pre-flight
	// again and the MGN call).
	outcomeP50, outcomeP99 time.Duration
	sending                time.Duration // from the first click sent to the last
}

func (r clickLoadResult) String() string {
	return fmt.Sprintf("%d clicks delivered in %v: launched %d, duplicates %d, lost %d, not started %d, unanswered %d, answer p50 %v p99 %v, outcome to the deciding click p50 %v p99 %v",
		r.delivered, r.sending.Round(time.Millisecond), r.launched, r.duplicates, r.lost, r.notStarted, r.unanswered, r.p50, r.p99, r.outcomeP50, r.outcomeP99)
}

const loadApprovers = 20

// run starts the emulators and two replicas, requests l.cards cutovers, sends l.clicks clicks
// and waits until every card is final.
func (l clickLoad) run(tb testing.TB) clickLoadResult {
	dsn := storetest.Postgres(tb)
	clock := mgnemu.NewManualClock(time.Now().UTC().Truncate(time.Second))
	sb, err := startSandbox(sandboxOptions{MGNAddr: "127.0.0.1:0", SlackAddr: "127.0.0.1:0", PostInterval: -1, Now: clock.Now,
		CutoverReady: l.cards, MaxActiveJobs: l.cards + 5})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sb.Close)
	e := &e2e{t: tb, sb: sb, clock: clock, logs: &testrig.SyncBuffer{}}
	approvers := []string{sandboxApprover}
	for i := range loadApprovers - 1 {
		id := fmt.Sprintf("U0APR%02d", i)
		sb.slack.AddUser(id, fmt.Sprintf("approver%02d", i))
		approvers = append(approvers, id)
	}
	env := e.procEnv(map[string]string{
		"CUTOVER_DB": dsn, "CUTOVER_POLL_INTERVAL": "1s", "CUTOVER_LEASE_TTL": "2s",
		// Servers are watched for notices at the least interval allowed outside tests, not
		// every 200 ms, so that the watcher does not take the cores the clicks need.
		"CUTOVER_WATCH_INTERVAL": "10s",
		"CUTOVER_APPROVERS":      strings.Join(approvers, ","),
	})
	replicas := []*botProc{e.startProc("replica 1", env), e.startProc("replica 2", env)}
	// A click's answer is the first answer posted to its response_url after it was sent
	// (redeliveries share the response_url of the click they repeat).
	answers := func(d *slackemu.Delivery) []slackemu.Answer {
		all := sb.slack.Answers(d.ResponseURL)
		return slices.DeleteFunc(all, func(a slackemu.Answer) bool { return a.At.Before(d.Sent) })
	}
	answer := func(d *slackemu.Delivery) (time.Time, bool) {
		if a := answers(d); len(a) > 0 {
			return a[0].At, true
		}
		return time.Time{}, false
	}
	e.wait(func(s *slackemu.Server) bool { return s.Connections() == 2 }, "both replicas to connect")

	var cards []string
	for i := range l.cards {
		e.command(sandboxOperator, fmt.Sprintf("launch cut%03d cutover", i+1))
		card, ok := e.findChannel(func(m slackemu.Message) bool {
			return hasButton(m, render.ActionConfirm) && !slices.Contains(cards, m.TS)
		})
		if !ok {
			tb.Fatalf("no confirmation card for cut%03d", i+1)
		}
		cards = append(cards, card.TS)
	}

	// The clicks: every card gets approvers' clicks; one in 40 is by eve, who may not confirm,
	// and one in 20 is a redelivery of a click already sent.
	rng := rand.New(rand.NewPCG(1, 2))
	type click struct {
		user, card string
		again      int // redeliver the again-th delivery (from 1) instead; 0: a new click
	}
	plan := make([]click, l.clicks)
	for i := range plan {
		plan[i] = click{user: approvers[rng.IntN(len(approvers))], card: cards[i%len(cards)]}
		switch {
		case i%40 == 39:
			plan[i].user = sandboxOther
		case i%20 == 19 && i > 0:
			plan[i].again = 1 + rng.IntN(i-1)
		}
	}
	var (
		mu         sync.Mutex
		deliveries = make([]*slackemu.Delivery, len(plan))
		afterKill  = make([]bool, len(plan))
		sem        = make(chan struct{}, max(l.inFlight, 1))
		wg         sync.WaitGroup
		killed     bool
	)
	sendStart := time.Now()
	for i, c := range plan {
		if l.kill && i == len(plan)/2 {
			wg.Wait()
			e.killProc(replicas[0], 1)
			killed = true
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var (
				d   *slackemu.Delivery
				err error
			)
			if c.again > 0 {
				mu.Lock()
				first := deliveries[c.again-1]
				mu.Unlock()
				if first == nil {
					return // its original was never sent
				}
				d, err = sb.slack.Redeliver(tb.Context(), first)
			} else {
				d, err = sb.slack.Click(tb.Context(), c.user, sandboxChannel, c.card, render.ActionConfirm)
			}
			if errors.Is(err, slackemu.ErrNoButton) {
				return // the card lost its buttons already: a person cannot click it any more
			}
			if err != nil {
				tb.Errorf("click %d: %v", i, err)
				return
			}
			if ack, err := d.WaitAck(tb.Context()); err != nil || ack.TimedOut {
				tb.Errorf("click %d: no ack in time (%v, %v)", i, ack.Latency, err)
			}
			if l.paced {
				// The person waits for the answer (at most 10 s) before clicking again.
				ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
				_ = sb.slack.WaitFor(ctx, func(*slackemu.Server) bool { _, ok := answer(d); return ok })
				cancel()
			}
			mu.Lock()
			deliveries[i], afterKill[i] = d, killed
			mu.Unlock()
		})
	}
	wg.Wait()
	res := clickLoadResult{sending: time.Since(sendStart)}

	// Every card ends naming its job or saying that nothing was launched.
	final := func(m slackemu.Message) bool {
		t := m.PlainText()
		return !hasButton(m, render.ActionConfirm) && (strings.Contains(t, "— job `mgnjob-") || strings.Contains(t, "nothing was launched"))
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, ts := range cards {
		for !final(e.message(ts)) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		switch m := e.message(ts); {
		case !final(m):
			res.lost++
			tb.Errorf("card %s never reached a final state: %q", ts, m.PlainText())
		case strings.Contains(m.PlainText(), "nothing was launched"):
			res.notStarted++
		}
	}
	perConfirmation := map[string]int{}
	for _, j := range sb.mgn.Jobs() {
		if c := j.Tags[migration.TagConfirmation]; c != "" {
			perConfirmation[c]++
		}
	}
	res.launched = len(perConfirmation)
	res.duplicates = sb.mgn.Calls("StartCutover") - res.launched
	for c, n := range perConfirmation {
		if n != 1 {
			tb.Errorf("confirmation %s has %d MGN jobs, want 1", c, n)
		}
	}

	var latencies, outcomes []time.Duration
	for i, d := range deliveries {
		if d != nil {
			res.delivered++
		}
		if d == nil || !afterKill[i] && l.kill {
			continue // sent before the kill: it may have gone to the replica that died
		}
		at, ok := answer(d)
		if !ok {
			res.unanswered++
			tb.Logf("click %d (%+v) unanswered: %d answers to its response_url, none after it was sent", i, plan[i], len(sb.slack.Answers(d.ResponseURL)))
			continue
		}
		latencies = append(latencies, at.Sub(d.Sent))
		// The deciding click is answered at once, then told what MGN did.
		if a := answers(d); plan[i].again == 0 && strings.Contains(a[0].Text, "yours was the deciding approval") {
			if len(a) < 2 {
				res.unanswered++
				tb.Logf("click %d (%+v) decided its card but was never told what MGN did", i, plan[i])
				continue
			}
			outcomes = append(outcomes, a[1].At.Sub(d.Sent))
		}
	}
	res.p50, res.p99 = quantiles(latencies)
	res.outcomeP50, res.outcomeP99 = quantiles(outcomes)
	return res
}

// quantiles returns the median and 99th percentile of ds (sorting it).
func quantiles(ds []time.Duration) (p50, p99 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)*99/100]
}

// TestClickLoadTwoReplicasKilled is the load the bot must survive: two replicas on PostgreSQL,
// many cutover cards, many concurrent clicks with redeliveries and a few by someone not
// allowed, one replica SIGKILLed half-way. Every confirmed card starts one cutover, every card
// ends naming its job, and every click sent to the surviving replica is answered.
func TestClickLoadTwoReplicasKilled(t *testing.T) {
	res := clickLoad{cards: 12, clicks: 240, kill: true, inFlight: 20}.run(t)
	t.Logf("12 cards, 240 clicks, one replica killed: %v", res)
	if res.launched != 12 || res.duplicates != 0 || res.lost != 0 || res.notStarted != 0 || res.unanswered != 0 {
		t.Errorf("got %v; want 12 launched, no duplicates, none lost or not started, every click answered", res)
	}
}

// BenchmarkClickLoad is issue-sized: 50 cards and 1,000 clicks on two replicas, in two shapes.
// people: 50 people clicking, each again once their last click was answered (50 clicks in
// flight). burst: the clicks sent as fast as the bot acks them (about 1,000 in 2 s), queueing up
// behind each other on the machine's cores. Goal: 50 launched, 0 duplicates, 0 lost, 0
// unanswered, answer p99 under 1 s.
func BenchmarkClickLoad(b *testing.B) {
	for _, shape := range []struct {
		name  string
		paced bool
	}{{"people", true}, {"burst", false}} {
		b.Run(shape.name, func(b *testing.B) {
			for b.Loop() {
				res := clickLoad{cards: 50, clicks: 1000, inFlight: 50, paced: shape.paced}.run(b)
				b.ReportMetric(float64(res.launched), "launched")
				b.ReportMetric(float64(res.duplicates), "duplicates")
				b.ReportMetric(float64(res.lost), "lost")
				b.ReportMetric(float64(res.unanswered), "unanswered")
				b.ReportMetric(float64(res.p50.Milliseconds()), "p50-ms")
				b.ReportMetric(float64(res.p99.Milliseconds()), "p99-ms")
				b.ReportMetric(float64(res.outcomeP50.Milliseconds()), "outcome-p50-ms")
				b.ReportMetric(float64(res.outcomeP99.Milliseconds()), "outcome-p99-ms")
				b.ReportMetric(float64(res.sending.Milliseconds()), "sending-ms")
			}
		})
	}
}
