package migration_test

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/migration"
)

// isoDuration is the grammar of the durations the bot accepts, written as a regular
// expression: P, then weeks and days, then T with hours, minutes and seconds, each optional
// and in this order, each a decimal number with an optional fraction; at least one part, and
// at least one after a T.
var isoDuration = regexp.MustCompile(`^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// referenceDuration is ParseDuration done the obvious way: the grammar above, exact decimal
// arithmetic, fractions of a nanosecond dropped; ok is false outside the grammar or beyond
// time.Duration's range.
func referenceDuration(s string) (time.Duration, bool) {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return 0, false
	}
	units := []time.Duration{7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute, time.Second}
	total := new(big.Rat)
	for i, unit := range units {
		if m[i+1] == "" {
			continue
		}
		n, ok := new(big.Rat).SetString(m[i+1])
		if !ok {
			return 0, false
		}
		total.Add(total, n.Mul(n, new(big.Rat).SetInt64(int64(unit))))
	}
	ns := new(big.Int).Quo(total.Num(), total.Denom())
	if !ns.IsInt64() {
		return 0, false
	}
	return time.Duration(ns.Int64()), true
}

// isoFormat writes d the way MGN does, hours, minutes and seconds with a fraction.
func isoFormat(d time.Duration) string {
	h, rest := d/time.Hour, d%time.Hour
	return fmt.Sprintf("PT%dH%dM%d.%09dS", h, rest/time.Minute, rest%time.Minute/time.Second, rest%time.Second)
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"P0D", "PT5S", "PT16H20M38.697305S", "P1DT2H", "PT0.5S", "P2W", "PT7M30S", "", "P", "PT",
		"P1Y", "PT1HT2M", "PT1.2.3S", "PT1S1H", "P1D1D", "PT1.S", "PT.5S", "PT9999999999999H", "PT0.1S", "PT0.0000000019S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := migration.ParseDuration(s)
		want, ok := referenceDuration(s)
		switch {
		case ok && err != nil:
			t.Fatalf("ParseDuration(%q): got error %v, want %v", s, err, want)
		case !ok && err == nil:
			t.Fatalf("ParseDuration(%q) = %v, want an error: it is not a duration of the grammar within range", s, got)
		case !ok:
			return
		case got != want:
			t.Fatalf("ParseDuration(%q) = %v, want %v", s, got, want)
		case got < 0:
			t.Fatalf("ParseDuration(%q) = %v, want no negative duration", s, got)
		}
		if back, err := migration.ParseDuration(isoFormat(got)); err != nil || back != got {
			t.Fatalf("ParseDuration(%q) = %v, but %q parses as %v, %v", s, got, isoFormat(got), back, err)
		}
	})
}

func FuzzCursor(f *testing.F) {
	f.Add("", 0, 0, "")
	f.Add("7:7:", 1234, 234, "bG9nOjEwMDA")
	f.Add("3:1:a:b::c", 3, 1, "a:b::c")
	f.Add("-1:0:", 0, 5, "\n")
	f.Add("+4:04:x", math.MaxInt, math.MaxInt, ":")
	f.Fuzz(func(t *testing.T, stored string, seen, offset int, token string) {
		if c, err := migration.ParseCursor(stored); err == nil {
			if c.Seen < 0 || c.PageOffset < 0 {
				t.Fatalf("ParseCursor(%q) = %+v, want no negative count", stored, c)
			}
			if again, err := migration.ParseCursor(c.String()); err != nil || again != c {
				t.Fatalf("ParseCursor(%q) = %+v, whose String %q parses as %+v, %v", stored, c, c.String(), again, err)
			}
		}
		if seen < 0 || offset < 0 {
			return
		}
		c := migration.Cursor{Seen: seen, PageOffset: offset, PageToken: token}
		if got, err := migration.ParseCursor(c.String()); err != nil || got != c {
			t.Fatalf("ParseCursor(%q) = %+v, %v; want %+v back", c.String(), got, err, c)
		}
	})
}

// FuzzResolve resolves arbitrary input against a small fleet whose names are arbitrary too.
func FuzzResolve(f *testing.F) {
	f.Add("web01", "web01", "web01.corp.example.com", "Billing API")
	f.Add("web01, s-10000000000000003,WEB01", "web01", "web01.corp.example.com", "x")
	f.Add("mail", "mail", "mail.dmz", "mail")
	f.Add(" , ,", "", "", "")
	f.Add("s-20000000000000002", "s-20000000000000002", "h", "")
	f.Fuzz(func(t *testing.T, input, name, host, other string) {
		fleet := []migration.Server{
			{ID: "s-20000000000000001", Name: name, Hostname: host, FQDN: host},
			{ID: "s-20000000000000002", Name: other, Hostname: name},
			{ID: "s-20000000000000003", Name: name, Hostname: other, Archived: true},
			{ID: "s-20000000000000004", Name: "web01", Hostname: "web01", FQDN: "web01.corp.example.com"},
		}
		checkResolve(t, fleet, input)
		for _, s := range fleet {
			if s.Archived {
				continue
			}
			for _, byName := range []string{s.ID, s.Name, s.Hostname, s.FQDN} {
				if byName == "" || strings.Contains(byName, ",") || strings.TrimSpace(byName) != byName {
					continue // a list separator or blanks around it: not a name on its own
				}
				got, err := migration.Resolve(fleet, byName)
				if amb, ok := errors.AsType[*migration.AmbiguousServerError](err); ok && slices.ContainsFunc(amb.Candidates, sameID(s)) {
					continue
				}
				if err != nil || len(got) != 1 || got[0].ID != s.ID {
					t.Fatalf("Resolve(%q) = %v, %v; want %s, which it names", byName, ids(got), err, s.ID)
				}
			}
		}
	})
}

func sameID(s migration.Server) func(migration.Server) bool {
	return func(c migration.Server) bool { return c.ID == s.ID }
}

// matches reports whether name names s: its ID, Name tag, hostname or FQDN, or the first label
// of its hostname or FQDN, in any case.
func matches(s migration.Server, name string) bool {
	for _, f := range []string{s.ID, s.Name, s.Hostname, s.FQDN} {
		if f != "" && strings.EqualFold(f, name) {
			return true
		}
	}
	for _, h := range []string{s.Hostname, s.FQDN} {
		if short, _, ok := strings.Cut(h, "."); ok && short != "" && strings.EqualFold(short, name) {
			return true
		}
	}
	return false
}

// checkResolve checks Resolve's answer for input against what input names in fleet.
func checkResolve(t *testing.T, fleet []migration.Server, input string) {
	t.Helper()
	var names []string
	for n := range strings.SplitSeq(input, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	got, err := migration.Resolve(fleet, input)
	var (
		unknown   *migration.UnknownServerError
		ambiguous *migration.AmbiguousServerError
	)
	switch {
	case err == nil:
		seen := map[string]bool{}
		for _, s := range got {
			if s.Archived || seen[s.ID] || !slices.ContainsFunc(names, func(n string) bool { return matches(s, n) }) {
				t.Fatalf("Resolve(%q) = %v: %s is archived, repeated or not named", input, ids(got), s.ID)
			}
			seen[s.ID] = true
		}
		for _, n := range names {
			if !slices.ContainsFunc(got, func(s migration.Server) bool { return matches(s, n) }) {
				t.Fatalf("Resolve(%q) = %v: nothing for %q", input, ids(got), n)
			}
		}
	case errors.As(err, &unknown):
		if !slices.Contains(names, unknown.Query) || len(unknown.Suggestions) > 5 {
			t.Fatalf("Resolve(%q): %v with %d suggestions, want a name of the input and at most 5", input, err, len(unknown.Suggestions))
		}
		for _, s := range fleet {
			if !s.Archived && matches(s, unknown.Query) {
				t.Fatalf("Resolve(%q): %v, yet %s matches %q", input, err, s.ID, unknown.Query)
			}
		}
		for _, s := range unknown.Suggestions {
			if s.Archived {
				t.Fatalf("Resolve(%q): suggests archived %s", input, s.ID)
			}
		}
	case errors.As(err, &ambiguous):
		if len(ambiguous.Candidates) < 2 || !slices.Contains(names, ambiguous.Query) {
			t.Fatalf("Resolve(%q): %v, want at least 2 candidates for a name of the input", input, err)
		}
		for _, s := range ambiguous.Candidates {
			if s.Archived || !matches(s, ambiguous.Query) {
				t.Fatalf("Resolve(%q): candidate %s is archived or does not match %q", input, s.ID, ambiguous.Query)
			}
		}
	case errors.Is(err, migration.ErrInvalid):
		if len(names) != 0 {
			t.Fatalf("Resolve(%q): %v, yet it names %q", input, err, names)
		}
	default:
		t.Fatalf("Resolve(%q): unexpected error %v", input, err)
	}
}
