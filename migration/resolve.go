package migration

import (
	"fmt"
	"slices"
	"strings"
)

// UnknownServerError says a name matched no server; Suggestions holds up to five servers
// whose names contain it.
type UnknownServerError struct {
	Query       string
	Suggestions []Server
}

func (e *UnknownServerError) Error() string { return fmt.Sprintf("no server matches %q", e.Query) }

// AmbiguousServerError says a name matched several servers, listed in Candidates.
type AmbiguousServerError struct {
	Query      string
	Candidates []Server
}

func (e *AmbiguousServerError) Error() string {
	return fmt.Sprintf("%q matches %d servers", e.Query, len(e.Candidates))
}

// MaxServersPerJob is MGN's limit of source servers in one job (StartTest, StartCutover).
const MaxServersPerJob = 200

// Resolve turns what a person typed into servers: a comma-separated list of source server IDs,
// hostnames, FQDNs or Name tags, matched case-insensitively among the non-archived servers. A
// hostname also matches by its first label ("web01" for "web01.corp.example.com"). Each name
// must match exactly one server: otherwise Resolve returns an *UnknownServerError or
// *AmbiguousServerError and never guesses. Servers named twice are returned once, in the order
// first named.
func Resolve(fleet []Server, input string) ([]Server, error) {
	var names []string
	for n := range strings.SplitSeq(input, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no server named: %w", ErrInvalid)
	}
	var out []Server
	seen := map[string]bool{}
	for _, n := range names {
		s, err := resolveOne(fleet, n)
		if err != nil {
			return nil, err
		}
		if !seen[s.ID] {
			seen[s.ID] = true
			out = append(out, s)
		}
	}
	if len(out) > MaxServersPerJob {
		return nil, fmt.Errorf("%d servers named, MGN takes at most %d in one job: %w", len(out), MaxServersPerJob, ErrInvalid)
	}
	return out, nil
}

func resolveOne(fleet []Server, name string) (Server, error) {
	var exact, short []Server
	for _, s := range fleet {
		if s.Archived {
			continue
		}
		// EqualFold with the name as typed: lower-casing it first would turn "İ" into "i̇",
		// which no longer folds to the "İ" of the server's own name.
		switch {
		case strings.EqualFold(s.ID, name), strings.EqualFold(s.Name, name),
			strings.EqualFold(s.Hostname, name), strings.EqualFold(s.FQDN, name):
			exact = append(exact, s)
		case strings.EqualFold(shortHost(s.Hostname), name), strings.EqualFold(shortHost(s.FQDN), name):
			short = append(short, s)
		}
	}
	matches := exact
	if len(matches) == 0 {
		matches = short
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return Server{}, &UnknownServerError{Query: name, Suggestions: suggest(fleet, strings.ToLower(name))}
	}
	slices.SortFunc(matches, func(a, b Server) int { return strings.Compare(a.DisplayName(), b.DisplayName()) })
	return Server{}, &AmbiguousServerError{Query: name, Candidates: matches}
}

// suggest lists up to five non-archived servers whose names or IDs contain q.
func suggest(fleet []Server, q string) []Server {
	var out []Server
	for _, s := range fleet {
		if s.Archived {
			continue
		}
		for _, field := range []string{s.ID, s.Name, s.Hostname, s.FQDN} {
			if field != "" && strings.Contains(strings.ToLower(field), q) {
				out = append(out, s)
				break
			}
		}
		if len(out) == 5 {
			break
		}
	}
	return out
}
