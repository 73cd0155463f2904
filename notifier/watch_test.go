package notifier

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
)

func TestNoticesOncePerTransition(t *testing.T) {
	r := newRig(t, rigOptions{})
	a := r.notifier(t, r.store, "a", nil)
	b := r.notifier(t, r.openStore(t), "b", nil)
	watchBoth := func() {
		var wg sync.WaitGroup
		for _, n := range []*Notifier{a, b} {
			wg.Go(func() {
				if err := n.WatchOnce(t.Context()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	watchBoth()
	if got := r.slack.Messages(channel); len(got) != 0 {
		t.Fatalf("baseline posted %d messages, want none: %+v", len(got), got)
	}

	tests := []struct {
		name   string
		id     string
		update func(*mgnemu.SourceServer)
		want   string
	}{
		{"initial sync done", mgnemu.SampleWeb02, func(s *mgnemu.SourceServer) {
			s.DataReplicationInfo.DataReplicationState = "CONTINUOUS"
			s.DataReplicationInfo.LagDuration = mgnemu.FormatDuration(time.Second)
			s.LifeCycle.State = "READY_FOR_TEST"
		}, "✅ web02 reached Continuous Data Replication — ready to test (`/cutover launch web02 test`)"},
		{"stalled", mgnemu.SampleAPI01, func(s *mgnemu.SourceServer) {
			s.DataReplicationInfo.DataReplicationState = "STALLED"
			s.DataReplicationInfo.DataReplicationError = &mgnemu.DataReplicationError{Error: "NOT_CONVERGING", RawError: "write rate 80 MB/s exceeds 10 MB/s"}
		}, "⚠️ api01 replication stalled: replication is not converging: the source writes faster than the link carries; check bandwidth or the staging disk type (write rate 80 MB/s exceeds 10 MB/s)"},
		{"recovered", mgnemu.SampleFile01, func(s *mgnemu.SourceServer) {
			s.DataReplicationInfo.DataReplicationState = "CONTINUOUS"
			s.DataReplicationInfo.DataReplicationError = nil
			s.DataReplicationInfo.LagDuration = mgnemu.FormatDuration(2 * time.Second)
		}, "✅ file01 replication recovered (Continuous Data Replication)"},
		{"lagging", mgnemu.SampleDB01, func(s *mgnemu.SourceServer) {
			s.DataReplicationInfo.LagDuration = mgnemu.FormatDuration(22 * time.Minute)
		}, "🐢 db01 lag is 22 min (threshold 15 min)"},
	}
	for _, tt := range tests {
		r.mgn.Update(tt.id, tt.update)
	}
	watchBoth()
	watchBoth() // nothing changed since
	got := r.slack.Messages(channel)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			for _, m := range got {
				if strings.Contains(m.Text, tt.want) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("got %d messages containing %q, want 1; messages: %q", n, tt.want, texts(got))
			}
		})
	}
	if len(got) != len(tests) {
		t.Errorf("got %d notices, want %d: %q", len(got), len(tests), texts(got))
	}

	r.mgn.Update(mgnemu.SampleDB01, func(s *mgnemu.SourceServer) {
		s.DataReplicationInfo.LagDuration = mgnemu.FormatDuration(time.Minute)
	})
	watchBoth()
	got = r.slack.Messages(channel)
	if last := got[len(got)-1].Text; len(got) != len(tests)+1 || last != "✅ db01 lag is back under 15 min (now 1 min)" {
		t.Errorf("after lag recovered: got %q, want one more notice for db01", texts(got))
	}
}

func texts(ms []slackemu.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Text)
	}
	return out
}
