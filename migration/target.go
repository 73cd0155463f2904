package migration

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// GroupKind says what a group of servers is in MGN.
type GroupKind string

// Kinds of groups a command may name.
const (
	KindWave        GroupKind = "wave"
	KindApplication GroupKind = "app"
)

// Group names a wave or an application.
type Group struct {
	Kind     GroupKind
	ID, Name string
}

// String is how a command names the group: `wave "Wave 1"`, `app billing`.
func (g Group) String() string { return string(g.Kind) + " " + quoteName(g.Name) }

// Ref names the group by its ID, in the form a command takes: "wave wave-…", "app app-…".
func (g Group) Ref() string { return string(g.Kind) + " " + g.ID }

// quoteName puts a name in double quotes when it has spaces, as a command needs it.
func quoteName(name string) string {
	if strings.ContainsAny(name, " \t") || name == "" {
		return strconv.Quote(name)
	}
	return name
}

// Target is what a command acts on: servers named one by one, or the non-archived members
// of a wave or an application.
type Target struct {
	// Group is the wave or application named; its Kind is "" for servers named one by one.
	Group Group
	// Servers are the servers named, in the order first named, or the group's members in
	// MGN's order (possibly none).
	Servers []Server
}

// IsGroup reports whether the target is a wave or an application.
func (t Target) IsGroup() bool { return t.Group.Kind != "" }

// UnknownGroupError says a name matched no wave or application; Suggestions holds up to
// five whose names contain it.
type UnknownGroupError struct {
	Kind        GroupKind
	Query       string
	Suggestions []Group
}

func (e *UnknownGroupError) Error() string {
	return fmt.Sprintf("no %s matches %q", kindWord(e.Kind), e.Query)
}

// AmbiguousGroupError says a name matched several waves or applications.
type AmbiguousGroupError struct {
	Kind       GroupKind
	Query      string
	Candidates []Group
}

func (e *AmbiguousGroupError) Error() string {
	return fmt.Sprintf("%q matches %d %ss", e.Query, len(e.Candidates), kindWord(e.Kind))
}

func kindWord(k GroupKind) string {
	if k == KindApplication {
		return "application"
	}
	return string(k)
}

// ParseGroup reads "wave NAME" or "app NAME" (also "application NAME"): the keyword in any
// case, NAME in double quotes when it has spaces (straight or typographic quotes; unquoted,
// the rest of the text is the name). ok is false when input names no group.
func ParseGroup(input string) (kind GroupKind, name string, ok bool) {
	input = strings.TrimSpace(input)
	word, rest, _ := strings.Cut(input, " ")
	switch strings.ToLower(word) {
	case "wave":
		kind = KindWave
	case "app", "application":
		kind = KindApplication
	default:
		return "", "", false
	}
	rest = strings.TrimSpace(rest)
	for _, q := range [][2]string{{`"`, `"`}, {"“", "”"}, {"„", "“"}} {
		if len(rest) >= len(q[0])+len(q[1]) && strings.HasPrefix(rest, q[0]) && strings.HasSuffix(rest, q[1]) {
			rest = strings.TrimSpace(rest[len(q[0]) : len(rest)-len(q[1])])
			break
		}
	}
	return kind, rest, true
}

// ResolveTarget turns what a person typed into a target: "wave NAME" or "app NAME" (see
// ParseGroup; NAME is the name, case-insensitive, or the ID) among the program's non-archived
// waves and applications, else servers as Resolve reads them. A name matching no group is an
// *UnknownGroupError, several an *AmbiguousGroupError; nothing is guessed. A group's members
// may be more than one job takes: the caller splits them.
func ResolveTarget(fleet []Server, prog Program, input string) (Target, error) {
	kind, name, ok := ParseGroup(input)
	if !ok {
		servers, err := Resolve(fleet, input)
		return Target{Servers: servers}, err
	}
	if name == "" {
		return Target{}, fmt.Errorf("no %s named: %w", kindWord(kind), ErrInvalid)
	}
	var groups []Group
	if kind == KindWave {
		for _, w := range prog.Waves {
			if !w.Archived {
				groups = append(groups, Group{Kind: kind, ID: w.ID, Name: w.Name})
			}
		}
	} else {
		for _, a := range prog.Applications {
			if !a.Archived {
				groups = append(groups, Group{Kind: kind, ID: a.ID, Name: a.Name})
			}
		}
	}
	var matches []Group
	for _, g := range groups {
		if strings.EqualFold(g.ID, name) || strings.EqualFold(g.Name, name) {
			matches = append(matches, g)
		}
	}
	switch len(matches) {
	case 0:
		var sugg []Group
		q := strings.ToLower(name)
		for _, g := range groups {
			if strings.Contains(strings.ToLower(g.Name), q) || strings.Contains(strings.ToLower(g.ID), q) {
				sugg = append(sugg, g)
			}
			if len(sugg) == 5 {
				break
			}
		}
		return Target{}, &UnknownGroupError{Kind: kind, Query: name, Suggestions: sugg}
	case 1:
	default:
		slices.SortFunc(matches, func(a, b Group) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
		return Target{}, &AmbiguousGroupError{Kind: kind, Query: name, Candidates: matches}
	}
	g := matches[0]
	t := Target{Group: g}
	if kind == KindWave {
		t.Servers = prog.WaveServers(fleet, g.ID)
	} else {
		t.Servers = ApplicationServers(fleet, g.ID)
	}
	return t, nil
}
