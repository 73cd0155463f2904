package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
)

func TestScratchLatencyTimeline(t *testing.T) {
	sb, err := startSandbox(sandboxOptions{MGNAddr: "127.0.0.1:0", SlackAddr: "127.0.0.1:0", PostInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	getenv := sb.getenv(map[string]string{
		"CUTOVER_DB":        filepath.Join(t.TempDir(), "cutoverbot.db"),
		"CUTOVER_HTTP_ADDR": "off",
		"CUTOVER_LOG_LEVEL": "error",
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run"}, getenv, strings.NewReader(""), io.Discard, io.Discard) }()
	defer func() { cancel(); <-done }()
	sb.mgn.SetLatency("", 2*time.Second)
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	sb.slack.WaitFor(wait, func(s *slackemu.Server) bool { return s.Connections() > 0 })
	type rec struct {
		i   int
		at  time.Duration
		lat time.Duration
	}
	var recs []rec
	var mu sync.Mutex
	start := time.Now()
	for round := range 6 {
		sem := make(chan struct{}, 50)
		var wg sync.WaitGroup
		for i := range 500 {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				d, err := sb.slack.SlashCommand(ctx, sandboxOperator, sandboxChannel, "status web01")
				if err != nil {
					t.Error(err)
					return
				}
				ack, _ := d.WaitAck(ctx)
				mu.Lock()
				recs = append(recs, rec{round*500 + i, d.Sent.Sub(start), ack.Latency})
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	sort.Slice(recs, func(a, b int) bool { return recs[a].at < recs[b].at })
	// buckets of 100
	for b := 0; b < len(recs); b += 100 {
		var ls []time.Duration
		for _, r := range recs[b:min(b+100, len(recs))] {
			ls = append(ls, r.lat)
		}
		sort.Slice(ls, func(a, c int) bool { return ls[a] < ls[c] })
		fmt.Printf("at %6.1fms  p50 %5.2f  max %5.2f\n", float64(recs[b].at.Microseconds())/1000, float64(ls[len(ls)/2].Microseconds())/1000, float64(ls[len(ls)-1].Microseconds())/1000)
	}
}
