package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"
)

// Start-up bounds: values past them would flood the channel, hammer AWS or cut every command
// short, so start-up refuses them (run's -lift-bounds flag lifts them for tests against the
// emulators).
const (
	minReminderGap = time.Hour // the reminder fires at most hourly...
	// ...and at least once a year: no two firings (nor start-up and the first) more than a
	// leap year apart, checked over four years, so that a yearly date is accepted whatever
	// the day of start-up and 29 February is not.
	maxReminderGap    = 366 * 24 * time.Hour
	reminderHorizon   = 4*365*24*time.Hour + 2*maxReminderGap
	minPollInterval   = time.Second
	minWatchInterval  = 10 * time.Second
	minCommandTimeout = 5 * time.Second
	minLeaseTTL       = 5 * time.Second
	// maxLeaseTTL keeps a takeover within the handlers' takeover window (2 minutes): a
	// replica taking over a dead one's confirmation starts the launch only inside it.
	maxLeaseTTL = time.Minute
	// minRetention is not lifted: audit rows are evidence.
	minRetention = 24 * time.Hour
)

// checkBounds returns an error naming the variable and its bound for every value of c past
// its bound; the reminder schedule is followed for a year from now. Values that failed to
// parse were reported already and are skipped.
func checkBounds(c Config, now time.Time) []error {
	var errs []error
	for _, d := range []struct {
		name     string
		got, min time.Duration
		why      string
	}{
		{"CUTOVER_POLL_INTERVAL", c.PollInterval, minPollInterval, "every poll reads each running job's log from AWS"},
		{"CUTOVER_WATCH_INTERVAL", c.WatchInterval, minWatchInterval, "every pass lists all source servers and jobs"},
		{"CUTOVER_COMMAND_TIMEOUT", c.CommandTimeout, minCommandTimeout, "a command or click needs several AWS and Slack calls"},
		{"CUTOVER_LEASE_TTL", c.LeaseTTL, minLeaseTTL, "an AWS call gets a third of it, and a shorter lease lets another replica take over a live one"},
	} {
		if d.got > 0 && d.got < d.min {
			errs = append(errs, fmt.Errorf("%s: %v is below the bound: at least %v (%s)", d.name, d.got, d.min, d.why))
		}
	}
	if c.LeaseTTL > maxLeaseTTL {
		errs = append(errs, fmt.Errorf("CUTOVER_LEASE_TTL: %v is above the bound: at most %v (a replica taking over a dead one's "+
			"confirmed cutover starts it only within 2 minutes of the approval)", c.LeaseTTL, maxLeaseTTL))
	}
	if sched, err := cron.ParseStandard(c.ReminderCron); err == nil {
		if err := reminderWithinBounds(sched, now.In(c.Location)); err != nil {
			errs = append(errs, fmt.Errorf("CUTOVER_REMINDER_CRON: %q %w", c.ReminderCron, err))
		}
	}
	return errs
}

// reminderWithinBounds follows sched for four years from start: it must fire at least once a
// year (no gap, nor the wait for the first firing, longer than a leap year) and never twice
// within an hour.
func reminderWithinBounds(sched cron.Schedule, start time.Time) error {
	end := start.Add(reminderHorizon)
	prev := start
	for first := true; ; first = false {
		next := sched.Next(prev)
		if next.IsZero() || next.Sub(prev) > maxReminderGap {
			what := "never fires within a year"
			if !first {
				what = fmt.Sprintf("fires on %s and then not for more than a year", prev.Format(time.DateOnly))
			}
			return errors.New(what + ": the bound is at least once a year and at most hourly")
		}
		if gap := next.Sub(prev); !first && gap < minReminderGap {
			return fmt.Errorf("fires more often than hourly (%s and %s, %v apart): the bound is at most hourly",
				prev.Format(time.DateTime), next.Format(time.DateTime), gap)
		}
		if next.After(end) {
			return nil
		}
		prev = next
	}
}

// loopbackOnly is the condition of lifting the bounds: Slack and both AWS endpoints are on
// this machine (the emulators), so nothing real is flooded.
func loopbackOnly(c Config) []error {
	var errs []error
	for _, e := range []struct{ name, url string }{
		{"SLACK_API_URL", c.SlackAPIURL}, {"AWS_ENDPOINT_URL_MGN", c.MGNEndpoint}, {"AWS_ENDPOINT_URL_EC2", c.EC2Endpoint},
	} {
		if !isLoopback(e.url) {
			errs = append(errs, fmt.Errorf("%s: -lift-bounds is for tests against the emulators only, and %q is not a loopback address (127.0.0.1, ::1 or localhost)", e.name, e.url))
		}
	}
	return errs
}

// isLoopback reports whether rawURL's host is localhost or a loopback IP address.
func isLoopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var days = regexp.MustCompile(`^(\d+)d$`)

// parseRetention reads CUTOVER_RETENTION: a number of days ("400d") or a Go duration ("720h"),
// at least a day.
func parseRetention(v string) (time.Duration, error) {
	var d time.Duration
	if m := days.FindStringSubmatch(v); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 100*365 {
			return 0, fmt.Errorf("%q is more days than make sense; at most 36500d", v)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else if pd, err := time.ParseDuration(v); err == nil {
		d = pd
	} else {
		return 0, fmt.Errorf("%q is not a number of days (400d) or a Go duration (720h) of at least 1 day", v)
	}
	if d < minRetention {
		return 0, fmt.Errorf("%q is below the bound: at least 1 day (24h); audit rows are evidence, keep them long (default 400d)", v)
	}
	return d, nil
}
