// Package clock is the time cutoverbot's loops, leases and records are measured by: the real
// clock in production, and in tests a Manual clock that moves only when told, so that a test
// steps time instead of waiting for it (tailscale's tstime.Clock is the model).
package clock

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Clock tells the time and makes tickers and timers that follow it.
type Clock interface {
	Now() time.Time
	// NewTicker returns a Ticker that sends the time on its channel every d (d > 0), as
	// time.NewTicker does.
	NewTicker(d time.Duration) Ticker
	// NewTimer returns a Timer that sends the time on its channel once d has passed.
	NewTimer(d time.Duration) Timer
}

// Ticker is a time.Ticker of some Clock.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Timer is a time.Timer of some Clock.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the Timer from firing; it reports whether it stopped it.
	Stop() bool
}

// Real is the system clock.
type Real struct{}

// Now is time.Now.
func (Real) Now() time.Time { return time.Now() }

// NewTicker is time.NewTicker.
func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

// NewTimer is time.NewTimer.
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.t.C }
func (t realTicker) Stop()               { t.t.Stop() }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// Or returns c, or the real clock when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}

// Manual is a Clock that moves only when Advance or Set moves it; its tickers and timers fire
// then, for every moment they were due (a ticker whose reader is behind drops ticks, as
// time.Ticker does). It is safe for concurrent use. Its Now method fits the emulators'
// Options.Now, so that one clock drives both the bot and the emulated services.
type Manual struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*waiter
}

// NewManual returns a Manual clock set to t.
func NewManual(t time.Time) *Manual { return &Manual{now: t} }

// Now returns the clock's time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Advance moves the clock forward by d, fires what fell due, and returns the new time.
func (m *Manual) Advance(d time.Duration) time.Time {
	m.mu.Lock()
	m.now = m.now.Add(d)
	now := m.now
	m.fireLocked()
	m.mu.Unlock()
	return now
}

// Set moves the clock to t and fires what fell due. Moving it backwards fires nothing.
func (m *Manual) Set(t time.Time) {
	m.mu.Lock()
	m.now = t
	m.fireLocked()
	m.mu.Unlock()
}

// NewTicker returns a ticker of this clock.
func (m *Manual) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	return manualTicker{m.add(d, d)}
}

// NewTimer returns a timer of this clock.
func (m *Manual) NewTimer(d time.Duration) Timer { return manualTimer{m.add(d, 0)} }

// Waiters reports how many tickers and timers are waiting on the clock: a test steps the
// clock once the loop it drives has set up its ticker.
func (m *Manual) Waiters() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.waiters)
}

func (m *Manual) add(d, every time.Duration) *waiter {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := &waiter{m: m, at: m.now.Add(d), every: every, c: make(chan time.Time, 1)}
	m.waiters = append(m.waiters, w)
	m.fireLocked()
	return w
}

// fireLocked sends on every waiter due at m.now, rescheduling tickers and dropping timers.
func (m *Manual) fireLocked() {
	var keep []*waiter
	for _, w := range m.waiters {
		if w.at.After(m.now) {
			keep = append(keep, w)
			continue
		}
		select {
		case w.c <- m.now:
		default: // the reader is behind: drop the tick
		}
		if w.every > 0 {
			for !w.at.After(m.now) {
				w.at = w.at.Add(w.every)
			}
			keep = append(keep, w)
		}
	}
	m.waiters = keep
}

func (m *Manual) remove(w *waiter) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.Index(m.waiters, w)
	if i < 0 {
		return false
	}
	m.waiters = slices.Delete(m.waiters, i, i+1)
	return true
}

// waiter is a Manual clock's ticker (every > 0) or timer.
type waiter struct {
	m     *Manual
	at    time.Time // next firing
	every time.Duration
	c     chan time.Time
}

type manualTicker struct{ w *waiter }

func (t manualTicker) C() <-chan time.Time { return t.w.c }
func (t manualTicker) Stop()               { t.w.m.remove(t.w) }

type manualTimer struct{ w *waiter }

func (t manualTimer) C() <-chan time.Time { return t.w.c }

// Stop stops the timer and reports whether it had not fired yet.
func (t manualTimer) Stop() bool { return t.w.m.remove(t.w) }

// Every calls f at once, then every interval of c and whenever wake fires (nil: never), until
// ctx ends. It returns when ctx has ended and f has returned.
func Every(ctx context.Context, c Clock, interval time.Duration, wake <-chan struct{}, f func(context.Context)) {
	t := c.NewTicker(interval)
	defer t.Stop()
	for {
		f(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		case <-wake:
		}
	}
}
