package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/render"
)

// waveBench is the bot wired as `cutoverbot run` wires it (newApp) against the emulators, with
// MGN holding a generated wave of 600 servers, and Slack's per-channel limit scaled down 20
// times (one post per 50 ms) so that a run takes seconds: the bot's poster keeps its own pace
// a little under that, as it keeps to Slack's 1 s.
type waveBench struct {
	sb     *sandbox
	a      *app
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const (
	benchPostEvery = 50 * time.Millisecond
	benchPoll      = 250 * time.Millisecond
)

func startWaveBench(b *testing.B, quota int) *waveBench {
	b.Helper()
	now := time.Now()
	pace := mgnemu.FastPace()
	pace.Stagger = 5 * time.Millisecond // 200 servers start within a second of each other
	sb, err := startSandbox(sandboxOptions{MGNAddr: "127.0.0.1:0", SlackAddr: "127.0.0.1:0", PostInterval: benchPostEvery,
		Pace: pace, Waves: []mgnemu.GeneratedWave{mgnemu.GenerateWave("Wave 6", 600, 200, now)}, MaxActiveServers: quota})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sb.Close)
	getenv := sb.getenv(map[string]string{
		"CUTOVER_DB":             filepath.Join(b.TempDir(), "cutoverbot.db"),
		"CUTOVER_POLL_INTERVAL":  benchPoll.String(),
		"CUTOVER_WATCH_INTERVAL": "1s",
		"CUTOVER_HTTP_ADDR":      "off",
	})
	cfg, err := loadConfig(getenv, true)
	if err != nil {
		b.Fatal(err)
	}
	cfg.PostInterval = benchPostEvery * 5 / 4
	a, err := newApp(b.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &waveBench{sb: sb, a: a, cancel: cancel}
	// The Socket Mode connection and the handlers (which start the batches) run; the
	// notifier's job poll is driven by the benchmark, so that its passes can be counted.
	w.wg.Go(func() { _ = a.bot.Run(ctx) })
	w.wg.Go(func() { _ = a.handlers.Run(ctx) })
	b.Cleanup(func() {
		cancel()
		w.wg.Wait()
		a.store.Close()
	})
	wait, stop := context.WithTimeout(b.Context(), 10*time.Second)
	defer stop()
	if err := sb.slack.WaitFor(wait, func(s *slackemu.Server) bool { return s.Connections() > 0 }); err != nil {
		b.Fatal("no Socket Mode connection")
	}
	return w
}

// command sends /cutover text as the operator and returns the answer and how long it took.
func (w *waveBench) command(b *testing.B, text string) (slackemu.Message, time.Duration) {
	b.Helper()
	before := len(w.sb.slack.Ephemerals(sandboxOperator))
	start := time.Now()
	if _, err := w.sb.slack.SlashCommand(b.Context(), sandboxOperator, sandboxChannel, text); err != nil {
		b.Fatal(err)
	}
	wait, stop := context.WithTimeout(b.Context(), time.Minute)
	defer stop()
	if err := w.sb.slack.WaitFor(wait, func(s *slackemu.Server) bool { return len(s.Ephemerals(sandboxOperator)) > before }); err != nil {
		b.Fatalf("no answer to /cutover %s", text)
	}
	eph := w.sb.slack.Ephemerals(sandboxOperator)
	return eph[len(eph)-1], time.Since(start)
}

// BenchmarkWave600 launches the test of a 600-server wave (24 of its servers fail their
// checks) with MGN's quota of servers in active jobs raised to 600, as AWS raises it on
// request, and follows it to its final report. It reports the jobs and their largest size
// (at most 200), the jobs MGN had when the command was answered (the first starts within the
// command), the DescribeJobLogItems and DescribeJobs calls per active job per poll, the
// ListSourceServerActions calls, the thread's posts and the 429s Slack answered, and the log
// items lost and posted twice.
func BenchmarkWave600(b *testing.B) {
	for range b.N {
		b.StopTimer()
		w := startWaveBench(b, 600)
		b.StartTimer()
		answer, took := w.command(b, `launch wave "Wave 6" test`)
		atAnswer := len(w.sb.mgn.Jobs())
		if !strings.Contains(answer.PlainText(), "576 servers in 3 jobs") {
			b.Fatalf("answer: %s", answer.PlainText())
		}
		testrig.WaitUntil(b, "the three jobs", 0, func() bool { return len(w.sb.mgn.Jobs()) == 3 })
		before := w.a.aws.Calls()
		jobPolls, passes := 0, 0
		tick := time.NewTicker(benchPoll)
		deadline := time.Now().Add(3 * time.Minute)
		for {
			groups, err := w.a.store.ActiveGroupLaunches(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			if len(groups) == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the wave's launch did not end within 3 minutes")
			}
			jobs, err := w.a.store.ActiveJobs(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			jobPolls += len(jobs)
			passes++
			_ = w.a.notifier.PollOnce(b.Context())
			<-tick.C
		}
		tick.Stop()
		b.StopTimer()
		after := w.a.aws.Calls()
		delta := func(op string) float64 { return float64(after[op] - before[op]) }

		largest := 0
		var lost, dup int
		parent := ""
		for _, m := range w.sb.slack.Messages(sandboxChannel) {
			if m.Metadata != nil && m.Metadata.EventType == "cutoverbot_group_parent" {
				parent = m.TS
			}
		}
		replies := w.sb.slack.Replies(sandboxChannel, parent)
		for _, j := range w.sb.mgn.Jobs() {
			largest = max(largest, len(j.ParticipatingServers))
			log, _ := w.sb.mgn.JobLog(j.JobID)
			shown := make([]int, len(log)+1)
			for _, r := range replies {
				md := r.Metadata
				if md == nil || md.EventType != "cutoverbot_job_events" || md.EventPayload["job_id"] != j.JobID {
					continue
				}
				first, last := int(md.EventPayload["first"].(float64)), int(md.EventPayload["last"].(float64))
				for k := first; k <= last && k < len(shown); k++ {
					shown[k]++
				}
			}
			for _, n := range shown[1:] {
				switch {
				case n == 0:
					lost++
				case n > 1:
					dup += n - 1
				}
			}
		}
		posted := len(w.sb.slack.Messages(sandboxChannel)) + len(replies)
		for _, m := range replies {
			if m.Broadcast {
				posted-- // also listed in the channel
			}
		}
		b.ReportMetric(float64(len(w.sb.mgn.Jobs())), "jobs")
		b.ReportMetric(float64(largest), "max-servers/job")
		b.ReportMetric(float64(atAnswer), "jobs-at-answer")
		b.ReportMetric(took.Seconds()*1000, "answer-ms")
		b.ReportMetric(delta("DescribeJobLogItems")/float64(jobPolls), "logcalls/jobpoll")
		b.ReportMetric(delta("DescribeJobs")/float64(jobPolls), "describejobs/jobpoll")
		b.ReportMetric(delta("ListSourceServerActions"), "actionlists")
		b.ReportMetric(float64(passes), "polls")
		b.ReportMetric(float64(posted), "posts")
		b.ReportMetric(float64(w.sb.slack.Calls("chat.postMessage")-posted), "429s")
		b.ReportMetric(float64(lost), "lost")
		b.ReportMetric(float64(dup), "duplicated")
		b.ReportMetric(0, "ns/op")
		b.StartTimer()
	}
}

// BenchmarkWaveStatus600 answers `/cutover status wave NAME` for a 600-server wave, each time
// from a bot that just started (nothing cached): it reports the MGN calls per answer (one
// listing of the fleet, one of the waves and one of the applications), the answer's time, and
// its blocks and largest block against Slack's limits.
func BenchmarkWaveStatus600(b *testing.B) {
	var (
		took                  time.Duration
		fleet, program        int
		blocks, widest, calls int
	)
	for range b.N {
		b.StopTimer()
		w := startWaveBench(b, 0)
		b.StartTimer()
		m, d := w.command(b, `status wave "Wave 6"`)
		b.StopTimer()
		took += d
		fleet += w.sb.mgn.Calls("DescribeSourceServers")
		program += w.sb.mgn.Calls("ListWaves") + w.sb.mgn.Calls("ListApplications")
		calls++
		blocks = max(blocks, len(m.Blocks))
		for _, raw := range m.Blocks {
			widest = max(widest, len(raw))
		}
		if !strings.Contains(m.PlainText(), "Wave Wave 6 · 600 servers") {
			b.Fatalf("answer: %s", m.PlainText())
		}
		b.StartTimer()
	}
	b.StopTimer()
	if blocks > render.MaxBlocks || widest > 3500 {
		b.Errorf("answer of %d blocks, the largest %d bytes: want at most %d blocks of sections within 3,000 characters", blocks, widest, render.MaxBlocks)
	}
	b.ReportMetric(float64(fleet)/float64(calls), "fleet-listings/answer")
	b.ReportMetric(float64(program)/float64(calls), "wave+app-listings/answer")
	b.ReportMetric(took.Seconds()*1000/float64(calls), "answer-ms")
	b.ReportMetric(float64(blocks), "blocks")
	b.ReportMetric(float64(widest), "largest-block-bytes")
	b.ReportMetric(0, "ns/op")
}
