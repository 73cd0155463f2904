package render

import (
	"testing"

	"github.com/cutoverbot/cutoverbot/migration"
)

func TestLaunchedBy(t *testing.T) {
	tests := []struct {
		name string
		job  migration.Launch
		want string
	}{
		{"test launch", migration.Launch{RequestedBy: "U0ANN"}, "requested by <@U0ANN>"},
		{"cutover", migration.Launch{RequestedBy: "U0ANN", ApprovedBy: []string{"U0BOB"}}, "requested by <@U0ANN>, approved by <@U0BOB>"},
		{"two approvers", migration.Launch{RequestedBy: "U0ANN", ApprovedBy: []string{"U0BOB", "U0CAT"}},
			"requested by <@U0ANN>, approved by <@U0BOB> and <@U0CAT>"},
		{"three approvers", migration.Launch{RequestedBy: "U0ANN", ApprovedBy: []string{"U0BOB", "U0CAT", "W0DAN"}},
			"requested by <@U0ANN>, approved by <@U0BOB>, <@U0CAT> and <@W0DAN>"},
		{"verified wins over a tag", migration.Launch{RequestedBy: "U0ANN", TaggedBy: "U0EVE"}, "requested by <@U0ANN>"},
		{"tagged user", migration.Launch{TaggedBy: "U0ANN"}, "tagged as requested by <@U0ANN>"},
		{"tag with markdown", migration.Launch{TaggedBy: "*ann*_~x~"}, "tagged as requested by `*ann*_~x~`"},
		{"tag with markup", migration.Launch{TaggedBy: "<!channel> `x` & y"}, "tagged as requested by `&lt;!channel&gt; 'x' &amp; y`"},
		{"tag that looks like a mention", migration.Launch{TaggedBy: "<@U0BOB>"}, "tagged as requested by `&lt;@U0BOB&gt;`"},
		{"untagged outside launch", migration.Launch{}, "started outside cutoverbot (console or API)"},
		{"older record", migration.Launch{StartedBy: "U0BOB"}, "started by <@U0BOB>"},
	}
	for _, tt := range tests {
		if got := LaunchedBy(tt.job); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
