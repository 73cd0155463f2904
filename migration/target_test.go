package migration_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/migration"
)

func program() ([]migration.Server, migration.Program) {
	fleet := []migration.Server{
		{ID: "s-20000000000000001", Name: "web01", ApplicationID: "app-shop0000000000001"},
		{ID: "s-20000000000000002", Name: "web02", ApplicationID: "app-shop0000000000001"},
		{ID: "s-20000000000000003", Name: "web01", ApplicationID: "app-shop0000000000001", Archived: true},
		{ID: "s-20000000000000004", Name: "db01", ApplicationID: "app-bill0000000000001"},
		{ID: "s-20000000000000005", Name: "lonely"},
		{ID: "s-20000000000000006", Name: "mq01", ApplicationID: "app-bill0000000000001"},
	}
	prog := migration.Program{
		Waves: []migration.Wave{
			{ID: "wave-00000000000000001", Name: "Wave 1"},
			{ID: "wave-00000000000000002", Name: "Wave 2"},
			{ID: "wave-00000000000000003", Name: "twin"},
			{ID: "wave-00000000000000004", Name: "TWIN"},
			{ID: "wave-00000000000000009", Name: "Wave 0", Archived: true},
		},
		Applications: []migration.Application{
			{ID: "app-shop0000000000001", Name: "web shop", WaveID: "wave-00000000000000001"},
			{ID: "app-bill0000000000001", Name: "billing", WaveID: "wave-00000000000000002"},
			{ID: "app-empty000000000001", Name: "empty", WaveID: "wave-00000000000000002"},
		},
	}
	return fleet, prog
}

func TestParseGroup(t *testing.T) {
	tests := []struct {
		input   string
		kind    migration.GroupKind
		name    string
		isGroup bool
	}{
		{`wave "Wave 1"`, migration.KindWave, "Wave 1", true},
		{`WAVE  “Wave 1” `, migration.KindWave, "Wave 1", true},
		{`wave Wave 1`, migration.KindWave, "Wave 1", true},
		{`app billing`, migration.KindApplication, "billing", true},
		{`Application "web shop"`, migration.KindApplication, "web shop", true},
		{`wave`, migration.KindWave, "", true},
		{`web01,db01`, "", "", false},
		{`waves`, "", "", false},
	}
	for _, tt := range tests {
		kind, name, ok := migration.ParseGroup(tt.input)
		if kind != tt.kind || name != tt.name || ok != tt.isGroup {
			t.Errorf("ParseGroup(%q): got (%q, %q, %v), want (%q, %q, %v)", tt.input, kind, name, ok, tt.kind, tt.name, tt.isGroup)
		}
	}
}

func TestResolveTarget(t *testing.T) {
	fleet, prog := program()
	tests := []struct {
		name, input string
		group       migration.Group
		want        []string
	}{
		{"wave by quoted name, archived member left out", `wave "Wave 1"`, migration.Group{Kind: migration.KindWave, ID: "wave-00000000000000001", Name: "Wave 1"},
			[]string{"s-20000000000000001", "s-20000000000000002"}},
		{"wave by name in another case", `wave wave 2`, migration.Group{Kind: migration.KindWave, ID: "wave-00000000000000002", Name: "Wave 2"},
			[]string{"s-20000000000000004", "s-20000000000000006"}},
		{"wave by ID", `wave WAVE-00000000000000002`, migration.Group{Kind: migration.KindWave, ID: "wave-00000000000000002", Name: "Wave 2"},
			[]string{"s-20000000000000004", "s-20000000000000006"}},
		{"application", `app Billing`, migration.Group{Kind: migration.KindApplication, ID: "app-bill0000000000001", Name: "billing"},
			[]string{"s-20000000000000004", "s-20000000000000006"}},
		{"empty application", `app empty`, migration.Group{Kind: migration.KindApplication, ID: "app-empty000000000001", Name: "empty"}, nil},
		{"servers", `web02, db01`, migration.Group{}, []string{"s-20000000000000002", "s-20000000000000004"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := migration.ResolveTarget(fleet, prog, tt.input)
			if err != nil {
				t.Fatalf("ResolveTarget(%q): %v", tt.input, err)
			}
			if got.Group != tt.group || got.IsGroup() != (tt.group.Kind != "") {
				t.Errorf("ResolveTarget(%q): group %+v, want %+v", tt.input, got.Group, tt.group)
			}
			if !slices.Equal(ids(got.Servers), tt.want) {
				t.Errorf("ResolveTarget(%q): servers %v, want %v", tt.input, ids(got.Servers), tt.want)
			}
		})
	}
}

func TestResolveTargetRefuses(t *testing.T) {
	fleet, prog := program()
	_, err := migration.ResolveTarget(fleet, prog, `wave twin`)
	if e, ok := errors.AsType[*migration.AmbiguousGroupError](err); !ok || len(e.Candidates) != 2 {
		t.Errorf("two waves named alike: got %v, want an *AmbiguousGroupError with 2 candidates", err)
	}
	_, err = migration.ResolveTarget(fleet, prog, `wave "Wave 0"`)
	if e, ok := errors.AsType[*migration.UnknownGroupError](err); !ok || e.Kind != migration.KindWave || len(e.Suggestions) != 0 {
		t.Errorf("archived wave: got %v, want an *UnknownGroupError without suggestions", err)
	}
	_, err = migration.ResolveTarget(fleet, prog, `wave wave`)
	if e, ok := errors.AsType[*migration.UnknownGroupError](err); !ok || len(e.Suggestions) != 4 {
		t.Errorf("a part of names: got %v, want an *UnknownGroupError with 4 suggestions", err)
	}
	if _, err = migration.ResolveTarget(fleet, prog, `app`); !errors.Is(err, migration.ErrInvalid) {
		t.Errorf("no name: got %v, want ErrInvalid", err)
	}
}

func TestGroupString(t *testing.T) {
	for g, want := range map[migration.Group]string{
		{Kind: migration.KindWave, ID: "wave-1", Name: "Wave 1"}:        `wave "Wave 1"`,
		{Kind: migration.KindApplication, ID: "app-1", Name: "billing"}: `app billing`,
	} {
		if got := g.String(); got != want {
			t.Errorf("%+v.String(): got %q, want %q", g, got, want)
		}
		if got, want := g.Ref(), string(g.Kind)+" "+g.ID; got != want {
			t.Errorf("%+v.Ref(): got %q, want %q", g, got, want)
		}
	}
}

func TestWaveCutoverDate(t *testing.T) {
	w := migration.Wave{Tags: map[string]string{migration.TagCutoverDate: "2026-12-07"}}
	if d, ok := w.CutoverDate(); !ok || !d.Equal(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("CutoverDate: got %v %v, want 2026-12-07", d, ok)
	}
	for _, v := range []string{"", "7.12.2026"} {
		w.Tags[migration.TagCutoverDate] = v
		if _, ok := w.CutoverDate(); ok {
			t.Errorf("CutoverDate with tag %q: got ok, want none", v)
		}
	}
}

func TestSplitBatches(t *testing.T) {
	for _, tt := range []struct {
		n     int
		sizes []int
	}{{0, nil}, {3, []int{3}}, {200, []int{200}}, {201, []int{101, 100}}, {432, []int{144, 144, 144}}, {600, []int{200, 200, 200}}} {
		var in []string
		for i := range tt.n {
			in = append(in, string(rune('a'+i%26))+string(rune('0'+i/26%10))+string(rune('A'+i/260)))
		}
		bs := migration.SplitBatches("g1", in)
		var sizes []int
		var all []string
		for i, b := range bs {
			sizes = append(sizes, len(b.ServerIDs))
			all = append(all, b.ServerIDs...)
			if b.Seq != i+1 || b.State != migration.BatchQueued || b.Key() != "g1/"+string(rune('1'+i)) {
				t.Errorf("batch %d of %d: seq %d state %q key %q", i, tt.n, b.Seq, b.State, b.Key())
			}
		}
		if !slices.Equal(sizes, tt.sizes) || !slices.Equal(all, in) {
			t.Errorf("SplitBatches of %d: sizes %v, want %v (in order, all kept: %v)", tt.n, sizes, tt.sizes, slices.Equal(all, in))
		}
	}
}

func TestPostLaunch(t *testing.T) {
	pl := &migration.PostLaunch{Actions: []migration.ActionRun{
		{Name: "CW agent", State: migration.ActionSucceeded},
		{Name: "Smoke test", MustSucceed: true, State: migration.ActionFailed, FailureReason: "HTTP 503"},
	}}
	if !pl.Ended() || !pl.Settled(2) || pl.Settled(3) {
		t.Errorf("Ended %v Settled(2) %v Settled(3) %v, want true true false", pl.Ended(), pl.Settled(2), pl.Settled(3))
	}
	if u := pl.Unverified(); len(u) != 1 || u[0].Name != "Smoke test" {
		t.Errorf("Unverified: got %+v, want the smoke test", u)
	}
	if got, want := pl.Summary(), "Smoke test failed: HTTP 503 (must succeed for cutover); CW agent succeeded"; got != want {
		t.Errorf("Summary: got %q, want %q", got, want)
	}
	var none *migration.PostLaunch
	if none.Ended() || none.Summary() != "" || none.Unverified() != nil {
		t.Error("a nil PostLaunch must report nothing")
	}
}
