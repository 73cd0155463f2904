// Package testrig builds what the tests of handlers, notifier and cmd share: the MGN + EC2 and
// Slack emulators on loopback behind the real aws-sdk-go-v2 and slack-go clients, all on one
// manual clock; the bot's poster; the store; a proxy that loses MGN's answers; and the one
// helper that waits for a condition no emulator signals. Tests only: no production package
// imports it.
package testrig

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/awsmgn"
	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/clock"
	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/store"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

// Options shape a Rig. The zero value is usable: the sample fleet with its applications and
// waves, a manual clock at Start, no Slack posting limit, an SQLite store.
type Options struct {
	Start time.Time // the manual clock's time; zero: 2026-03-02 09:00 UTC, a Monday
	// RealClock runs the emulators (MGN's jobs, Slack's timestamps) on the real clock.
	RealClock bool
	// Fleet is MGN's servers, with Applications and Waves; nil: the sample fleet with its
	// applications and waves.
	Fleet        []mgnemu.SourceServer
	Applications []mgnemu.Application
	Waves        []mgnemu.Wave
	MaxActive    int // MGN's quota of servers in active jobs; 0: MGN's 200
	// MGNURL turns the MGN emulator's URL into the one the adapter talks to (a proxy); nil
	// keeps it.
	MGNURL func(emulator string) string
	// RetryMaxAttempts bounds the adapter's retries of reads; 0: the SDK's 3.
	RetryMaxAttempts int
	// PostInterval is Slack's per-channel posting limit; 0: none.
	PostInterval time.Duration
	// Poster tunes the poster; its zero fields are fast (a millisecond between calls).
	Poster bot.PosterConfig
	DSN    string       // the store's database; "": an SQLite file in the test's directory
	Logger *slog.Logger // nil: warnings to the test's output
}

// Rig is the emulators, the clients and the store of one test.
type Rig struct {
	Clock  *clock.Manual
	MGN    *mgnemu.Server
	AWS    *awsmgn.Client
	Slack  *slackemu.Server
	API    *slack.Client // the bot's Web API client, with the app-level token too
	Poster *bot.Poster
	Store  *store.Store
	DSN    string
	Logger *slog.Logger
}

// DefaultStart is the manual clock's time when Options.Start is zero.
var DefaultStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// New starts the emulators and opens the store; everything stops when the test ends.
func New(tb testing.TB, o Options) *Rig {
	tb.Helper()
	r := &Rig{Clock: clock.NewManual(cmp.Or(o.Start, DefaultStart)), Logger: o.Logger}
	if r.Logger == nil {
		r.Logger = slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	now := r.Clock.Now
	if o.RealClock {
		now = time.Now
	}
	fleet, apps, waves := o.Fleet, o.Applications, o.Waves
	if fleet == nil {
		fleet, apps, waves = mgnemu.SampleFleet(now()), mgnemu.SampleApplications(now()), mgnemu.SampleWaves(now())
	}
	r.MGN = mgnemu.New(mgnemu.Options{Now: now, Servers: fleet, Applications: apps, Waves: waves, MaxServersInActiveJobs: o.MaxActive})
	if err := r.MGN.Start("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.MGN.Close)
	mgnURL := r.MGN.URL()
	if o.MGNURL != nil {
		mgnURL = o.MGNURL(mgnURL)
	}
	quiet := slog.New(slog.DiscardHandler)
	r.AWS = awsmgn.New(aws.Config{Region: "eu-central-1", Credentials: aws.AnonymousCredentials{}},
		awsmgn.Options{MGNEndpoint: mgnURL, EC2Endpoint: r.MGN.URL(), Logger: quiet, OutcomeDelay: time.Millisecond,
			RetryMaxAttempts: o.RetryMaxAttempts})

	interval := o.PostInterval
	if interval == 0 {
		interval = -1
	}
	r.Slack = slackemu.New(slackemu.Options{Now: now, PostInterval: interval})
	if err := r.Slack.Start("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Slack.Close)
	r.API = slack.New(r.Slack.BotToken(), slack.OptionAPIURL(r.Slack.URL()), slack.OptionAppLevelToken(r.Slack.AppToken()))
	pc := o.Poster
	pc.ChannelInterval = cmp.Or(pc.ChannelInterval, time.Millisecond)
	pc.Burst = cmp.Or(pc.Burst, 1000)
	pc.UpdateInterval = cmp.Or(pc.UpdateInterval, time.Millisecond)
	pc.EphemeralInterval = cmp.Or(pc.EphemeralInterval, time.Millisecond)
	pc.ReadInterval = cmp.Or(pc.ReadInterval, time.Millisecond)
	pc.RetryBackoff = cmp.Or(pc.RetryBackoff, time.Millisecond)
	if pc.Now == nil {
		pc.Now = now
	}
	r.Poster = bot.NewPoster(quiet, r.API, pc)

	r.DSN = cmp.Or(o.DSN, storetest.SQLite(tb))
	r.Store = r.OpenStore(tb)
	return r
}

// OpenStore opens another handle on the rig's database, as another replica would, on the
// rig's clock; it is closed when the test ends.
func (r *Rig) OpenStore(tb testing.TB) *store.Store {
	tb.Helper()
	st, err := store.Open(context.Background(), r.DSN, r.Logger, store.WithClock(r.Clock.Now))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// WaitUntil polls cond until it holds, failing the test after within (0: 20 s) or when the
// test ends. It is for conditions no emulator signals (an emulator's WaitFor is better where
// one does); it never stands in for stepping a clock.
func WaitUntil(tb testing.TB, what string, within time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.NewTimer(cmp.Or(within, 20*time.Second))
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			tb.Fatalf("timed out waiting for %s", what)
		case <-tb.Context().Done():
			tb.Fatalf("test ended while waiting for %s", what)
		}
	}
}

// LossyProxy forwards every request to target and loses the answers that lose (nil: none)
// names by path: the service acts on the request, the client gets a 502. It returns the
// proxy's URL and the count of answers lost; it stops when the test ends.
func LossyProxy(tb testing.TB, target string, lose func(path string) bool) (string, *atomic.Int64) {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	lost := new(atomic.Int64)
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(resp *http.Response) error {
		if lose != nil && lose(resp.Request.URL.Path) {
			lost.Add(1)
			return errors.New("answer lost on the way back")
		}
		return nil
	}
	p.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) { w.WriteHeader(http.StatusBadGateway) }
	srv := httptest.NewServer(p)
	tb.Cleanup(srv.Close)
	return srv.URL, lost
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes: a log that several goroutines or a
// child process write.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Take returns what was written since the last Take, and empties the buffer.
func (s *SyncBuffer) Take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.b.String()
	s.b.Reset()
	return out
}
