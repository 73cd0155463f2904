package migration_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cutoverbot/cutoverbot/migration"
)

func resolveFleet() []migration.Server {
	return []migration.Server{
		{ID: "s-10000000000000001", Hostname: "web01", FQDN: "web01.corp.example.com", Name: "web01"},
		{ID: "s-10000000000000002", Hostname: "web01", FQDN: "web01.corp.example.com", Name: "web01", Archived: true},
		{ID: "s-10000000000000003", Hostname: "app01.corp.example.com", FQDN: "app01.corp.example.com", Name: "Billing API"},
		{ID: "s-10000000000000004", Hostname: "db01", FQDN: "db01.corp.example.com"},
		{ID: "s-10000000000000005", Hostname: "mail", FQDN: "mail.corp.example.com", Name: "mail-corp"},
		{ID: "s-10000000000000006", Hostname: "mail", FQDN: "mail.dmz.example.com", Name: "mail-dmz"},
		{ID: "s-10000000000000007", Hostname: "web010", FQDN: "web010.corp.example.com"},
		{ID: "s-10000000000000008", Hostname: "web02.corp.example.com"},
		{ID: "s-10000000000000009", Hostname: "lb01", Name: "web02"},
		{ID: "s-1000000000000000a", Hostname: "old01", Archived: true},
	}
}

func ids(servers []migration.Server) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s.ID
	}
	return out
}

func TestResolve(t *testing.T) {
	fleet := resolveFleet()
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{name: "ID", input: "s-10000000000000004", want: []string{"s-10000000000000004"}},
		{name: "ID upper case", input: "S-10000000000000004", want: []string{"s-10000000000000004"}},
		{name: "hostname, archived twin ignored", input: "web01", want: []string{"s-10000000000000001"}},
		{name: "FQDN", input: "db01.corp.example.com", want: []string{"s-10000000000000004"}},
		{name: "FQDN upper case", input: "WEB01.CORP.EXAMPLE.COM", want: []string{"s-10000000000000001"}},
		{name: "Name tag case-insensitive", input: "billing api", want: []string{"s-10000000000000003"}},
		{name: "short host of an FQDN hostname", input: "app01", want: []string{"s-10000000000000003"}},
		{name: "short host of an FQDN", input: "DB01", want: []string{"s-10000000000000004"}},
		{name: "FQDN tells twins apart", input: "mail.dmz.example.com", want: []string{"s-10000000000000006"}},
		{name: "exact match beats short host", input: "web02", want: []string{"s-10000000000000009"}},
		{name: "comma list with duplicates, in order first named", input: " db01 ,web01,, s-10000000000000001, Billing API,db01 ",
			want: []string{"s-10000000000000004", "s-10000000000000001", "s-10000000000000003"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := migration.Resolve(fleet, tt.input)
			if err != nil {
				t.Fatalf("Resolve(%q): got error %v, want %v", tt.input, err, tt.want)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("Resolve(%q): got %v, want %v", tt.input, ids(got), tt.want)
			}
		})
	}
}

func TestResolveUnknown(t *testing.T) {
	fleet := resolveFleet()
	tests := []struct {
		name            string
		input           string
		wantQuery       string
		wantSuggestions []string
	}{
		{name: "prefix suggests, archived left out", input: "web", wantQuery: "web",
			wantSuggestions: []string{"s-10000000000000001", "s-10000000000000007", "s-10000000000000008", "s-10000000000000009"}},
		{name: "nothing alike", input: "zzz", wantQuery: "zzz"},
		{name: "archived only", input: "old01", wantQuery: "old01"},
		{name: "one bad name in a list", input: "web01, Nope", wantQuery: "Nope"},
		{name: "upper-case suggestion query", input: "DB", wantQuery: "DB", wantSuggestions: []string{"s-10000000000000004"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := migration.Resolve(fleet, tt.input)
			e, ok := errors.AsType[*migration.UnknownServerError](err)
			if !ok {
				t.Fatalf("Resolve(%q): got %v, %v; want an *UnknownServerError", tt.input, ids(got), err)
			}
			if e.Query != tt.wantQuery {
				t.Errorf("Query: got %q, want %q", e.Query, tt.wantQuery)
			}
			if !slices.Equal(ids(e.Suggestions), tt.wantSuggestions) {
				t.Errorf("Suggestions: got %v, want %v", ids(e.Suggestions), tt.wantSuggestions)
			}
			if !strings.Contains(e.Error(), tt.wantQuery) {
				t.Errorf("Error(): got %q, want it to name %q", e.Error(), tt.wantQuery)
			}
		})
	}
}

func TestResolveSuggestsAtMostFive(t *testing.T) {
	var fleet []migration.Server
	for i := range 8 {
		fleet = append(fleet, migration.Server{ID: fmt.Sprintf("s-2000000000000000%d", i), Hostname: fmt.Sprintf("node-%d", i)})
	}
	_, err := migration.Resolve(fleet, "node")
	e, ok := errors.AsType[*migration.UnknownServerError](err)
	if !ok {
		t.Fatalf("Resolve(node): got %v, want an *UnknownServerError", err)
	}
	if got, want := ids(e.Suggestions), ids(fleet[:5]); !slices.Equal(got, want) {
		t.Errorf("Suggestions: got %v, want %v", got, want)
	}
}

func TestResolveAmbiguous(t *testing.T) {
	fleet := resolveFleet()
	_, err := migration.Resolve(fleet, "MAIL")
	e, ok := errors.AsType[*migration.AmbiguousServerError](err)
	if !ok {
		t.Fatalf("Resolve(MAIL): got %v, want an *AmbiguousServerError", err)
	}
	if e.Query != "MAIL" {
		t.Errorf("Query: got %q, want %q", e.Query, "MAIL")
	}
	if got, want := ids(e.Candidates), []string{"s-10000000000000005", "s-10000000000000006"}; !slices.Equal(got, want) {
		t.Errorf("Candidates: got %v, want %v", got, want)
	}
	if want := `"MAIL" matches 2 servers`; e.Error() != want {
		t.Errorf("Error(): got %q, want %q", e.Error(), want)
	}

	// Candidates come sorted by display name whatever the fleet order.
	slices.Reverse(fleet)
	_, err = migration.Resolve(fleet, "mail")
	if e, ok := errors.AsType[*migration.AmbiguousServerError](err); !ok || !slices.Equal(ids(e.Candidates), []string{"s-10000000000000005", "s-10000000000000006"}) {
		t.Errorf("Resolve(mail) on a reversed fleet: got %v, want candidates mail-corp, mail-dmz", err)
	}
}

func TestResolveInvalid(t *testing.T) {
	var big []migration.Server
	var names []string
	for i := range 201 {
		s := migration.Server{ID: fmt.Sprintf("s-3%016x", i), Hostname: fmt.Sprintf("h%03d", i)}
		big = append(big, s)
		names = append(names, s.Hostname)
	}
	tests := []struct {
		name  string
		fleet []migration.Server
		input string
	}{
		{name: "empty", fleet: resolveFleet(), input: ""},
		{name: "only commas and spaces", fleet: resolveFleet(), input: " , ,"},
		{name: "201 servers", fleet: big, input: strings.Join(names, ",")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := migration.Resolve(tt.fleet, tt.input)
			if !errors.Is(err, migration.ErrInvalid) {
				t.Errorf("Resolve: got %d servers, %v; want ErrInvalid", len(got), err)
			}
		})
	}
	t.Run("200 servers", func(t *testing.T) {
		got, err := migration.Resolve(big, strings.Join(names[:200], ","))
		if err != nil || len(got) != 200 {
			t.Errorf("Resolve: got %d servers, %v; want 200, nil", len(got), err)
		}
	})
}
