package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
)

// BenchmarkAckLatencyFullBot measures how fast the whole bot (cutoverbot run) acknowledges
// slash commands while MGN answers every call in 2 s, over each transport, against a yardstick
// measured in the same run: a bare slack-go Socket Mode loop that acks every envelope and does
// nothing else, or a bare net/http handler that checks the signature and answers 200.
//
// Each iteration sends one round of 500 /cutover status commands, 50 in flight, to a freshly
// started yardstick and one to a freshly started bot, alternating which goes first. A fresh bot
// per round finds its workers idle, its queue (1024) empty and its view of the fleet not yet
// fetched, so every command takes the normal path: acked at once, its work waiting for MGN. It
// reports the p50 and p99 of the ack latency Slack would see for both, the ratio of the p99s,
// and the CPU time per command. The goals: a p99 under 10 ms on loopback, and within 1.2 times
// the yardstick's.
func BenchmarkAckLatencyFullBot(b *testing.B) {
	for _, tr := range transports {
		b.Run("transport="+tr.name, func(b *testing.B) { benchFullBot(b, tr) })
	}
}

func benchFullBot(b *testing.B, tr transport) {
	sb, err := startSandbox(sandboxOptions{MGNAddr: "127.0.0.1:0", SlackAddr: "127.0.0.1:0", PostInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	sb.mgn.SetLatency("", 2*time.Second)
	yardstick := slackemu.New(slackemu.Options{PostInterval: -1})
	if err := yardstick.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer yardstick.Close()
	yardstick.AddChannel(sandboxChannel, "migration")

	var bot, bare []time.Duration
	var botCPU, bareCPU time.Duration // process CPU time spent in the rounds
	rounds := []func(){
		func() {
			defer startYardstick(b, yardstick, tr)()
			bare = append(bare, benchRound(b, yardstick, &bareCPU)...)
		},
		func() {
			defer startBenchBot(b, sb, tr, len(bot))()
			bot = append(bot, benchRound(b, sb.slack, &botCPU)...)
		},
	}
	for b.Loop() {
		for _, round := range rounds {
			round()
		}
		slices.Reverse(rounds)
	}
	p50, p99 := percentiles(b, bot)
	bareP50, bareP99 := percentiles(b, bare)
	b.ReportMetric(p50, "p50-ack-ms")
	b.ReportMetric(p99, "p99-ack-ms")
	b.ReportMetric(bareP50, "bare-p50-ack-ms")
	b.ReportMetric(bareP99, "bare-p99-ack-ms")
	b.ReportMetric(p99/bareP99, "p99/bare")
	// CPU time per command, emulators included, does not depend on what else runs on the machine.
	b.ReportMetric(float64(botCPU.Microseconds())/float64(len(bot)), "cpu-µs/cmd")
	b.ReportMetric(float64(bareCPU.Microseconds())/float64(len(bare)), "bare-cpu-µs/cmd")
	b.ReportMetric(0, "ns/op")
}

// startBenchBot starts `cutoverbot run` over tr against sb, on a fresh store numbered n, and
// waits until Slack's requests reach it. The function it returns stops the bot.
func startBenchBot(b *testing.B, sb *sandbox, tr transport, n int) (stop func()) {
	env := map[string]string{
		"CUTOVER_DB":        filepath.Join(b.TempDir(), fmt.Sprintf("cutoverbot-%d.db", n)),
		"CUTOVER_HTTP_ADDR": "off",
		"CUTOVER_LOG_LEVEL": "error",
	}
	for k, v := range tr.env {
		env[k] = v
	}
	http := env["CUTOVER_SLACK_MODE"] == "http"
	if http {
		// The listener's port is chosen here, as the bot logs nothing below errors.
		addr := freeAddr(b)
		env["CUTOVER_HTTP_ADDR"] = addr
		sb.slack.SetRequestURL("http://" + addr + "/slack/events")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"run"}, sb.getenv(env), strings.NewReader(""), io.Discard, io.Discard)
	}()
	if http {
		waitUntil(b, "the bot to answer Slack's url_verification", func() bool { return sb.slack.VerifyURL(ctx) == nil })
	} else {
		waitUntil(b, "the bot to connect", func() bool { return sb.slack.Connections() > 0 })
	}
	return func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("run: %v", err)
		}
		waitUntil(b, "the bot's socket to close", func() bool { return sb.slack.Connections() == 0 })
	}
}

// cpuTime is the CPU time the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startYardstick starts, on emu, the least an app must do over tr to acknowledge: a slack-go
// Socket Mode loop that acks each envelope, or a net/http handler that checks each request's
// signature and answers 200. The function it returns stops it.
func startYardstick(b *testing.B, emu *slackemu.Server, tr transport) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	halt := func() { cancel(); wg.Wait() }

	if tr.env["CUTOVER_SLACK_MODE"] == "http" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
			if err != nil {
				http.Error(w, "unreadable", http.StatusBadRequest)
				return
			}
			sv, err := slack.NewSecretsVerifier(r.Header, emu.SigningSecret())
			if err == nil {
				_, _ = sv.Write(body)
				err = sv.Ensure()
			}
			if err != nil {
				http.Error(w, "bad signature", http.StatusUnauthorized)
			}
		})}
		wg.Go(func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				b.Errorf("yardstick: %v", err)
			}
		})
		wg.Go(func() { <-ctx.Done(); _ = srv.Close() })
		emu.SetRequestURL("http://" + ln.Addr().String() + "/slack/events")
		return halt
	}

	api := slack.New(emu.BotToken(), slack.OptionAppLevelToken(emu.AppToken()), slack.OptionAPIURL(emu.URL()))
	sm := socketmode.New(api)
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
	waitUntil(b, "the yardstick to connect", func() bool { return emu.Connections() > 0 })
	return func() {
		halt()
		waitUntil(b, "the yardstick to disconnect", func() bool { return emu.Connections() == 0 })
	}
}

// waitUntil polls cond for up to 10 s.
func waitUntil(b *testing.B, what string, cond func() bool) {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// benchRound sends 500 slash commands, 50 in flight, through emu and returns the ack latency
// Slack measured for each. It adds the CPU time the process spent meanwhile to cpu.
func benchRound(b *testing.B, emu *slackemu.Server, cpu *time.Duration) []time.Duration {
	const commands, inFlight = 500, 50
	start := cpuTime(b)
	defer func() { *cpu += cpuTime(b) - start }()
	ctx := b.Context()
	latencies := make([]time.Duration, 0, commands)
	var mu sync.Mutex
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	for range commands {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d, err := emu.SlashCommand(ctx, sandboxOperator, sandboxChannel, "status web01")
			if err != nil {
				b.Error(err)
				return
			}
			actx, acancel := context.WithTimeout(ctx, 5*time.Second)
			defer acancel()
			ack, err := d.WaitAck(actx)
			if err != nil || ack.TimedOut || ack.Error != "" {
				b.Errorf("ack: %+v, %v", ack, err)
				return
			}
			mu.Lock()
			latencies = append(latencies, ack.Latency)
			mu.Unlock()
		})
	}
	wg.Wait()
	return latencies
}

// percentiles returns the p50 and p99 of latencies, in milliseconds.
func percentiles(b *testing.B, latencies []time.Duration) (p50, p99 float64) {
	if len(latencies) == 0 {
		b.Fatal("no acks")
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	d50, d99 := quantiles(latencies)
	return ms(d50), ms(d99)
}
