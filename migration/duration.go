package migration

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses the ISO-8601 durations MGN uses for lagDuration and
// elapsedReplicationDuration, such as "P0D", "PT5S" and "PT16H20M38.697305S". Years and months
// have no fixed length and are refused; weeks and days count 7 and 1 times 24 hours. It returns
// an error naming the input when it is malformed.
func ParseDuration(s string) (time.Duration, error) {
	bad := func() (time.Duration, error) { return 0, fmt.Errorf("malformed ISO-8601 duration %q", s) }
	rest, ok := strings.CutPrefix(s, "P")
	if !ok || rest == "" {
		return bad()
	}
	var total time.Duration
	inTime := false
	seen := false
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return bad()
			}
			inTime = true
			rest = rest[1:]
			if rest == "" {
				return bad()
			}
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 || i == len(rest) {
			return bad()
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return bad()
		}
		var unit time.Duration
		switch designator := rest[i]; {
		case !inTime && designator == 'W':
			unit = 7 * 24 * time.Hour
		case !inTime && designator == 'D':
			unit = 24 * time.Hour
		case inTime && designator == 'H':
			unit = time.Hour
		case inTime && designator == 'M':
			unit = time.Minute
		case inTime && designator == 'S':
			unit = time.Second
		default:
			return bad()
		}
		total += time.Duration(n * float64(unit))
		seen = true
		rest = rest[i+1:]
	}
	if !seen {
		return bad()
	}
	return total, nil
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
