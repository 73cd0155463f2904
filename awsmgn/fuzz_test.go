package awsmgn_test

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cutoverbot/cutoverbot/awsmgn"
	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/migration"
)

// FuzzJobLogPaging follows a test launch's log the way the notifier does, polling at
// arbitrary moments from a stored cursor, each poll with a page size of its own (as after a
// restart with another configuration), and checks that every log item arrives exactly once,
// in order. Each byte of polls is one poll: its high half the wait before it in 400 ms steps,
// its low half the page size less one.
func FuzzJobLogPaging(f *testing.F) {
	f.Add([]byte{0x00, 0x10, 0x20, 0x30})
	f.Add([]byte{0x51, 0x01, 0x0f, 0x72, 0xf0})
	f.Add([]byte{0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2})
	f.Add([]byte{0x3f, 0x30, 0x3f, 0x30, 0x3f, 0x30, 0x3f, 0x30})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, polls []byte) {
		if len(polls) > 40 {
			polls = polls[:40]
		}
		r := newRig(t, nil, awsmgn.Options{})
		job, err := r.client.Launch(t.Context(), launchReq(migration.ModeTest, mgnemu.SampleWeb01))
		if err != nil {
			t.Fatal(err)
		}
		clients := map[int32]*awsmgn.Client{}
		var got []migration.Event
		stored := ""
		poll := func(pageSize int32) {
			c := clients[pageSize]
			if c == nil {
				c = awsmgn.New(aws.Config{Region: "eu-central-1", Credentials: aws.AnonymousCredentials{}},
					awsmgn.Options{MGNEndpoint: r.emu.URL(), EC2Endpoint: r.emu.URL(), PageSize: pageSize})
				clients[pageSize] = c
			}
			cur, err := migration.ParseCursor(stored)
			if err != nil {
				t.Fatalf("ParseCursor(%q): %v", stored, err)
			}
			evs, next, err := c.JobLog(t.Context(), job.ID, cur)
			if err != nil {
				t.Fatalf("JobLog from %q with pages of %d: %v", stored, pageSize, err)
			}
			got = append(got, evs...)
			stored = next.String()
		}
		for _, p := range polls {
			r.clock.Advance(time.Duration(p>>4) * 400 * time.Millisecond)
			poll(1 + int32(p&0xf))
		}
		r.clock.Advance(mgnemu.FastPace().Total() + time.Minute)
		poll(3)
		poll(1000)
		log, _ := r.emu.JobLog(job.ID)
		if len(log) == 0 || log[len(log)-1].Event != "JOB_END" {
			t.Fatalf("emulator log of %s: got %d items, want a finished log", job.ID, len(log))
		}
		var kinds, want []string
		for _, e := range got {
			kinds = append(kinds, string(e.Kind))
		}
		for _, l := range log {
			want = append(want, l.Event)
		}
		if !slices.Equal(kinds, want) {
			t.Fatalf("polls %x: got %v, want each log item once: %v", polls, kinds, want)
		}
	})
}
