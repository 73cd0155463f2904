package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/store"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

// lossyStore is the real store that, after keep progress saves, reports saves as done
// without making them: a database that loses its last commits in a crash (SQLite with
// synchronous=NORMAL may, on power loss), so that a restart reads progress some steps behind
// what Slack shows.
type lossyStore struct {
	*store.Store
	mu   sync.Mutex
	keep int
	lost int
}

func (s *lossyStore) SaveProgress(ctx context.Context, jobID, cursor string, posted int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keep > 0 {
		s.keep--
		return s.Store.SaveProgress(ctx, jobID, cursor, posted)
	}
	s.lost++
	return nil
}

func (s *lossyStore) lostSaves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lost
}

// TestCrashAfterPostRepostsNothing has a notifier die right after Slack took one of its
// posts, before the store recorded it: its memory is gone and its lease not released.
// Another notifier on the same database takes the job over once the lease runs out, and
// the thread ends with one parent, every log event once, in order, and one final report.
func TestCrashAfterPostRepostsNothing(t *testing.T) {
	tests := []struct {
		name string
		// store is the first notifier's store; crash runs that notifier until it dies.
		crash func(t *testing.T, r *rig, first *Notifier, jobID string)
		store func(r *rig) Store
	}{
		{"parent posted, parent not recorded", tripAt("SetJobParent"), flaky("SetJobParent")},
		{"reply posted, progress not recorded", tripAt("SaveProgress"), flaky("SaveProgress")},
		{"final report posted, job not marked done", tripAt("FinishJob"), flaky("FinishJob")},
		{"replies posted, progress lost by the database", func(t *testing.T, r *rig, first *Notifier, jobID string) {
			st := first.store.(*lossyStore)
			r.drive(t, step, func() bool { return st.lostSaves() >= 3 }, first)
		}, func(r *rig) Store { return &lossyStore{Store: r.store, keep: 2} }},
		{"reply posted, its answer never arrived", func(t *testing.T, r *rig, first *Notifier, jobID string) {
			sj, err := r.store.Job(t.Context(), jobID)
			if err != nil {
				t.Fatal(err)
			}
			r.drive(t, step, func() bool { return len(r.slack.Replies(channel, sj.ParentTS)) >= 2 }, first)
			// Slack takes the next reply and holds its answer; the process dies meanwhile.
			r.slack.HoldReplies("chat.postMessage", 1, time.Minute)
			replies := len(r.slack.Replies(channel, sj.ParentTS))
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() {
				defer close(done)
				for ctx.Err() == nil {
					r.clock.Advance(step)
					_ = first.PollOnce(ctx)
				}
			}()
			wait, stop := context.WithTimeout(t.Context(), 10*time.Second)
			defer stop()
			err = r.slack.WaitFor(wait, func(s *slackemu.Server) bool { return len(s.Replies(channel, sj.ParentTS)) > replies })
			cancel()
			<-done
			if err != nil {
				t.Fatal(err)
			}
		}, func(r *rig) Store { return r.store }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T, dsn string) {
				r := newRig(t, rigOptions{dsn: dsn})
				first := r.notifier(t, tt.store(r), "first", nil)
				job := r.startTest(t, nil, mgnemu.SampleWeb01, mgnemu.SampleAPI01)
				if _, err := first.Follow(t.Context(), job, "U1"); err != nil && !errors.Is(err, errStoreDown) {
					t.Fatal(err)
				}
				tt.crash(t, r, first, job.ID)

				second := r.notifier(t, r.openStore(t), "second", nil)
				r.clock.Advance(second.leaseTTL()) // the dead one's lease runs out
				r.drive(t, step, r.jobDone(t, job.ID), second)
				parents := r.parents()
				if len(parents) != 1 {
					t.Fatalf("got %d top-level messages, want 1 thread parent", len(parents))
				}
				r.checkThread(t, job.ID, parents[0].TS)
				if n := len(r.verified(parents[0].TS)); n != 1 {
					t.Errorf("post-launch reports in the thread: got %d, want 1 (web01 runs post-launch actions)", n)
				}
				sj, err := r.store.Job(t.Context(), job.ID)
				if err != nil || sj.ParentTS != parents[0].TS {
					t.Errorf("stored job: %+v, %v; want the thread's parent recorded", sj, err)
				}
			})
		})
	}
}

// flaky is a store whose next call of method fails, as a database whose connection drops.
func flaky(method string) func(r *rig) Store {
	return func(r *rig) Store { return &flakyStore{Store: r.store, fail: method} }
}

// tripAt runs the first notifier until its store failed the write of method.
func tripAt(method string) func(t *testing.T, r *rig, first *Notifier, jobID string) {
	return func(t *testing.T, r *rig, first *Notifier, jobID string) {
		st := first.store.(*flakyStore)
		r.drive(t, step, st.failed, first)
	}
}

// TestReminderRetriedOnce covers a reminder firing claimed but not posted, or posted but not
// recorded: a later watcher pass (on this replica, or on another once the claim expired)
// posts it once, or finds it in the channel and posts nothing.
func TestReminderRetriedOnce(t *testing.T) {
	tests := []struct {
		name string
		// fail makes the first attempt fail; it returns the notifier that retries.
		fail func(t *testing.T, r *rig) *Notifier
		// wantBefore is how many reminders the channel shows right after the failure.
		wantBefore int
	}{
		{"post failed, same replica retries", func(t *testing.T, r *rig) *Notifier {
			n := r.notifier(t, r.store, "a", nil)
			r.slack.RateLimit("chat.postMessage", 1000, time.Second)
			if err := remindUntil(t, n, func() bool { return r.slack.Calls("chat.postMessage") > 0 }); err == nil {
				t.Fatal("Remind while Slack refuses every post: got no error")
			}
			r.slack.RateLimit("chat.postMessage", 0, 0)
			return n
		}, 0},
		{"replica died after claiming", func(t *testing.T, r *rig) *Notifier {
			if ok, err := r.store.ClaimReminder(t.Context(), epoch, "dead", reminderClaim, r.clock.Now()); err != nil || !ok {
				t.Fatalf("claim: %v, %v", ok, err)
			}
			other := r.notifier(t, r.openStore(t), "b", nil)
			if err := other.WatchOnce(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := len(r.reminders()); got != 0 {
				t.Fatalf("another replica posted %d reminders while the claim held, want 0", got)
			}
			r.clock.Advance(reminderClaim)
			return other
		}, 0},
		{"posted, not recorded, replica died", func(t *testing.T, r *rig) *Notifier {
			st := &flakyStore{Store: r.store, fail: "FinishReminder"}
			if err := r.notifier(t, st, "a", nil).Remind(t.Context(), epoch); !errors.Is(err, errStoreDown) {
				t.Fatalf("Remind: got %v, want the store failure", err)
			}
			r.clock.Advance(reminderClaim)
			return r.notifier(t, r.openStore(t), "b", nil)
		}, 1},
		{"posted, answer lost, post failed", func(t *testing.T, r *rig) *Notifier {
			n := r.notifier(t, r.store, "a", nil)
			// Slack takes the post, its answers are lost, and so are those of the poster's
			// look at the history.
			r.slack.LoseReplies("chat.postMessage", 1)
			r.slack.RateLimit("conversations.history", 1000, time.Second)
			if err := remindUntil(t, n, func() bool { return r.slack.Calls("conversations.history") > 0 }); err == nil {
				t.Fatal("Remind: got no error")
			}
			r.slack.RateLimit("conversations.history", 0, 0)
			return n
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T, dsn string) {
				r := newRig(t, rigOptions{dsn: dsn})
				r.clock.Advance(time.Minute) // the firing was a minute ago
				n := tt.fail(t, r)
				if got := len(r.reminders()); got != tt.wantBefore {
					t.Fatalf("after the failure: %d reminders, want %d", got, tt.wantBefore)
				}
				for range 3 {
					if err := n.WatchOnce(t.Context()); err != nil {
						t.Fatal(err)
					}
					r.clock.Advance(time.Minute)
				}
				if got := len(r.reminders()); got != 1 {
					t.Errorf("after the retries: %d reminders for the firing, want 1", got)
				}
				if left, err := r.store.UnfinishedReminders(t.Context()); err != nil || len(left) != 0 {
					t.Errorf("unfinished firings: %v, %v; want none", left, err)
				}
			})
		})
	}
}

// remindUntil runs n.Remind for the firing at epoch and cuts it off once stuck says it is stuck
// where the test wants it (so that the cut does not depend on how fast the machine is); it
// returns Remind's error.
func remindUntil(t *testing.T, n *Notifier, stuck func() bool) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Remind(ctx, epoch) }()
	deadline := time.Now().Add(10 * time.Second)
	for !stuck() {
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("Remind never got stuck where the test wants it")
		}
	}
	cancel()
	return <-done
}

// TestReminderSupersededNotRetried leaves a firing unposted until the next one is due: it is
// closed without a post, since the next reminder says the same.
func TestReminderSupersededNotRetried(t *testing.T) {
	r := newRig(t, rigOptions{})
	if ok, err := r.store.ClaimReminder(t.Context(), epoch, "dead", reminderClaim, epoch); err != nil || !ok {
		t.Fatalf("claim: %v, %v", ok, err)
	}
	r.clock.Advance(7*24*time.Hour + time.Minute)
	n := r.notifier(t, r.store, "a", nil)
	if err := n.WatchOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(r.reminders()); got != 0 {
		t.Errorf("got %d reminders, want none for a superseded firing", got)
	}
	if left, err := r.store.UnfinishedReminders(t.Context()); err != nil || len(left) != 0 {
		t.Errorf("unfinished firings: %v, %v; want none", left, err)
	}
}

// reminders returns the channel's reminders for the firing at epoch, found by their
// metadata.
func (r *rig) reminders() []slackemu.Message {
	var out []slackemu.Message
	for _, m := range r.slack.Messages(channel) {
		if md := m.Metadata; md != nil && md.EventType == eventReminder && md.EventPayload["firing"] == epoch.Format(time.RFC3339) {
			out = append(out, m)
		}
	}
	return out
}

// blindPoster is the real poster in a workspace where the bot may not read the channel back:
// conversations.replies and .history answer missing_scope.
type blindPoster struct{ *bot.Poster }

var errMissingScope = fmt.Errorf("read: %w", slack.SlackErrorResponse{Err: "missing_scope"})

func (blindPoster) Replies(context.Context, string, string) ([]slack.Message, error) {
	return nil, errMissingScope
}

func (blindPoster) Find(context.Context, string, string, time.Time, slack.SlackMetadata) (string, error) {
	return "", errMissingScope
}

// TestUnreadableChannelStillFollows restarts a notifier that may not read the channel back
// (the app lacks channels:history): it says so as an error and finishes the thread from the
// store's account instead of stalling.
func TestUnreadableChannelStillFollows(t *testing.T) {
	r := newRig(t, rigOptions{})
	first := r.notifier(t, r.store, "first", nil)
	job := r.startTest(t, nil, mgnemu.SampleWeb01)
	parentTS, err := first.Follow(t.Context(), job, "U1")
	if err != nil {
		t.Fatal(err)
	}
	r.drive(t, step, func() bool { lines, _ := r.thread(t, parentTS); return len(lines) >= 4 }, first)

	var logs testrig.SyncBuffer
	second, err := New(slog.New(slog.NewTextHandler(&logs, nil)), r.aws, blindPoster{r.poster}, r.openStore(t),
		Config{Channel: channel, Holder: "second", Clock: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(second.leaseTTL())
	r.drive(t, step, r.jobDone(t, job.ID), second)
	r.checkThread(t, job.ID, parentTS)
	if !strings.Contains(logs.String(), "level=ERROR msg=\"cannot read the channel back") {
		t.Errorf("logs: %s\nwant an error saying the channel cannot be read back", logs.String())
	}
}
