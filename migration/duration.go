package migration

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// durationParts are the designators of an ISO-8601 duration in the order they must appear,
// with their length in seconds; hours, minutes and seconds come after the T.
var durationParts = []struct {
	designator byte
	afterT     bool
	seconds    int64
}{{'W', false, 7 * 24 * 3600}, {'D', false, 24 * 3600}, {'H', true, 3600}, {'M', true, 60}, {'S', true, 1}}

// ParseDuration parses the ISO-8601 durations MGN uses for lagDuration and
// elapsedReplicationDuration, such as "P0D", "PT5S" and "PT16H20M38.697305S": P, then weeks and
// days, then T and hours, minutes and seconds, each at most once and in this order, each a
// number with an optional decimal fraction. Years and months have no fixed length and are
// refused; weeks and days count 7 and 1 times 24 hours. Fractions are exact to the nanosecond,
// below which they are dropped. It returns an error naming the input when it is malformed or
// longer than time.Duration holds (about 292 years).
func ParseDuration(s string) (time.Duration, error) {
	bad := func() (time.Duration, error) { return 0, fmt.Errorf("malformed ISO-8601 duration %q", s) }
	rest, ok := strings.CutPrefix(s, "P")
	if !ok || rest == "" {
		return bad()
	}
	var total int64
	next := 0 // the first of durationParts still allowed
	afterT := false
	for rest != "" {
		if rest[0] == 'T' {
			if afterT || len(rest) == 1 {
				return bad()
			}
			afterT, rest = true, rest[1:]
			for next < len(durationParts) && !durationParts[next].afterT {
				next++
			}
			continue
		}
		whole, rest1 := cutDigits(rest)
		fraction := ""
		if strings.HasPrefix(rest1, ".") {
			fraction, rest1 = cutDigits(rest1[1:])
			if fraction == "" {
				return bad()
			}
		}
		if whole == "" || rest1 == "" {
			return bad()
		}
		i := next
		for i < len(durationParts) && (durationParts[i].designator != rest1[0] || durationParts[i].afterT != afterT) {
			i++
		}
		if i == len(durationParts) {
			return bad()
		}
		ns, ok := durationPart(whole, fraction, durationParts[i].seconds)
		if !ok || ns > math.MaxInt64-total {
			return bad()
		}
		total += ns
		next, rest = i+1, rest1[1:]
	}
	if next == 0 || (afterT && !durationParts[next-1].afterT) {
		return bad() // no part at all, or none after the T
	}
	return time.Duration(total), nil
}

// cutDigits splits s after its leading decimal digits.
func cutDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

// durationPart is whole.fraction times seconds, in nanoseconds rounded down; ok is false
// beyond an int64.
func durationPart(whole, fraction string, seconds int64) (ns int64, ok bool) {
	n, err := strconv.ParseInt(whole, 10, 64)
	unit := seconds * int64(time.Second)
	if err != nil || n > math.MaxInt64/unit {
		return 0, false
	}
	ns = n * unit
	// The fraction's first nine digits count whole nanoseconds of a second; the rest, a
	// fraction of a nanosecond, carries into them once multiplied by seconds.
	first := (fraction + "000000000")[:9]
	nanos, _ := strconv.ParseInt(first, 10, 64)
	carry := int64(0)
	for i := len(fraction) - 1; i >= 9; i-- {
		carry = (int64(fraction[i]-'0')*seconds + carry) / 10
	}
	part := nanos*seconds + carry
	if ns > math.MaxInt64-part {
		return 0, false
	}
	return ns + part, true
}

// ParseTime parses an MGN timestamp. The service documents "2022-08-31T14:33:26Z" but returns
// "2022-08-31T14:33:26.983505+00:00"; RFC 3339 with optional fractions covers both. An empty
// string is the zero time.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("malformed timestamp %q", s)
	}
	return t.UTC(), nil
}

// FormatTime renders t the way the service does.
func FormatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000+00:00")
}
