package main

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
)

// BenchmarkAckLatencyFullBot measures how fast the whole bot (cutoverbot run) acknowledges
// slash commands while MGN answers every call in 2 s: 500 /cutover status commands per
// iteration, 50 in flight at a time, through the Slack emulator's Socket Mode. It reports the
// p50 and p99 of the ack latency Slack would see; the goal is a p99 under 10 ms on loopback.
func BenchmarkAckLatencyFullBot(b *testing.B) {
	sb, err := startSandbox(sandboxOptions{MGNAddr: "127.0.0.1:0", SlackAddr: "127.0.0.1:0", PostInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	getenv := sb.getenv(map[string]string{
		"CUTOVER_DB":        filepath.Join(b.TempDir(), "cutoverbot.db"),
		"CUTOVER_HTTP_ADDR": "off",
		"CUTOVER_LOG_LEVEL": "error",
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run"}, getenv, strings.NewReader(""), io.Discard, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("run: %v", err)
		}
	}()
	sb.mgn.SetLatency("", 2*time.Second)

	benchAcks(b, sb)
}

// BenchmarkAckLatencyBareLoop is the yardstick for BenchmarkAckLatencyFullBot: a bare slack-go
// Socket Mode loop that acks every envelope and does nothing else, under the same load.
func BenchmarkAckLatencyBareLoop(b *testing.B) {
	sb, err := startSandbox(sandboxOptions{MGNAddr: "127.0.0.1:0", SlackAddr: "127.0.0.1:0", PostInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	api := slack.New(sb.slack.BotToken(), slack.OptionAppLevelToken(sb.slack.AppToken()), slack.OptionAPIURL(sb.slack.URL()))
	sm := socketmode.New(api)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = sm.RunContext(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-sm.Events:
				if ev.Request != nil && ev.Request.EnvelopeID != "" {
					_ = sm.AckCtx(ctx, ev.Request.EnvelopeID, nil)
				}
			}
		}
	})
	benchAcks(b, sb)
}

// benchAcks sends 500 slash commands per iteration, 50 in flight, and reports the p50 and p99
// ack latency the Slack emulator measured.
func benchAcks(b *testing.B, sb *sandbox) {
	const commands, inFlight = 500, 50
	ctx := b.Context()
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if err := sb.slack.WaitFor(wait, func(s *slackemu.Server) bool { return s.Connections() > 0 }); err != nil {
		b.Fatal("no Socket Mode connection")
	}
	var latencies []time.Duration
	var mu sync.Mutex
	b.ResetTimer()
	for range b.N {
		sem := make(chan struct{}, inFlight)
		var wg sync.WaitGroup
		for range commands {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				d, err := sb.slack.SlashCommand(ctx, sandboxOperator, sandboxChannel, "status web01")
				if err != nil {
					b.Error(err)
					return
				}
				actx, acancel := context.WithTimeout(ctx, 5*time.Second)
				defer acancel()
				ack, err := d.WaitAck(actx)
				if err != nil || ack.TimedOut {
					b.Errorf("ack: %v (timed out %v)", err, ack.TimedOut)
					return
				}
				mu.Lock()
				latencies = append(latencies, ack.Latency)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	b.StopTimer()
	if len(latencies) == 0 {
		b.Fatal("no acks")
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ack-ms")
	b.ReportMetric(pct(0.99), "p99-ack-ms")
	b.ReportMetric(0, "ns/op")
}
