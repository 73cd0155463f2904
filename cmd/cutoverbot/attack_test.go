package main

import (
	"strings"
	"testing"
	"time"
)

// Finding: the reminder bound "at least once within a year" is a span of 365×24 h from the
// moment of start-up, so whether a schedule passes depends on the day the bot (re)starts. A
// yearly reminder ("0 9 1 1 *", accepted by TestConfigBounds) is refused by a restart
// between its firing on 1 January 2028 and the next day, because 2028 has 366 days (and so
// is any yearly date when the year after the restart holds a 29 February): every replica
// then fails to start, with an error claiming the schedule never fires. The other
// way round, "0 9 29 2 *" (29 February: once in four years) is accepted by a start within a
// year before a 29 February.
func TestAttackReminderBoundDependsOnStartDay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec    string
		start   time.Time
		refused bool
	}{
		{"0 9 1 1 *", time.Date(2028, 1, 1, 12, 0, 0, 0, time.UTC), false},
		{"0 9 15 3 *", time.Date(2027, 3, 15, 10, 0, 0, 0, time.UTC), false},
		{"0 9 29 2 *", time.Date(2027, 6, 1, 12, 0, 0, 0, time.UTC), true},
	}
	for _, tt := range tests {
		t.Run(tt.spec+" from "+tt.start.Format(time.DateOnly), func(t *testing.T) {
			errs := checkBounds(Config{ReminderCron: tt.spec, Location: time.UTC}, tt.start)
			if refused := len(errs) > 0; refused != tt.refused {
				t.Errorf("CUTOVER_REMINDER_CRON=%q at start-up on %s: got refused=%v (%v), want refused=%v",
					tt.spec, tt.start.Format(time.DateTime), refused, errs, tt.refused)
			}
		})
	}
}

// Finding: CUTOVER_LEASE_TTL has a lower bound only. A lease as long as the takeover window
// (2 minutes, handlers.Config.TakeoverWindow) or longer makes every takeover too late: a
// confirmation whose replica died is never started by another, as the README promises, and
// its card says "⏳ … starting…" until the lease ends (for 10m, ten minutes), then "nothing
// was launched". The AWS call of a click also gets a third of it (3m20s for 10m).
func TestAttackLeaseLongerThanTakeoverWindow(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"2m", "10m", "24h"} {
		t.Run(v, func(t *testing.T) {
			_, err := LoadConfig(configWith(map[string]string{"CUTOVER_LEASE_TTL": v}))
			if err == nil || !strings.Contains(err.Error(), "CUTOVER_LEASE_TTL") {
				t.Errorf("CUTOVER_LEASE_TTL=%s: got %v, want a refusal naming it and its upper bound", v, err)
			}
		})
	}
}

// Finding: CUTOVER_APPROVALS is checked against 1..10 only, not against the approvers that
// exist. With two approvers named directly (no user group) and CUTOVER_APPROVALS=3, start-up
// succeeds and every cutover and finalize card waits for a third approver who cannot exist,
// then expires: silently, as the never-firing reminder schedules the bounds refuse.
func TestAttackMoreApprovalsThanApprovers(t *testing.T) {
	t.Parallel()
	_, err := LoadConfig(configWith(map[string]string{"CUTOVER_APPROVERS": "U1A,U2B", "CUTOVER_APPROVALS": "3"}))
	if err == nil || !strings.Contains(err.Error(), "CUTOVER_APPROVALS") {
		t.Errorf("CUTOVER_APPROVALS=3 with the two approvers U1A,U2B: got %v, want a refusal naming CUTOVER_APPROVALS", err)
	}
}
