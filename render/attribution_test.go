package render

import (
	"testing"

	"github.com/cutoverbot/cutoverbot/store"
)

func TestLaunchedBy(t *testing.T) {
	tests := []struct {
		name string
		job  store.Job
		want string
	}{
		{"test launch", store.Job{RequestedBy: "U0ANN"}, "requested by <@U0ANN>"},
		{"cutover", store.Job{RequestedBy: "U0ANN", ApprovedBy: []string{"U0BOB"}}, "requested by <@U0ANN>, approved by <@U0BOB>"},
		{"two approvers", store.Job{RequestedBy: "U0ANN", ApprovedBy: []string{"U0BOB", "U0CAT"}},
			"requested by <@U0ANN>, approved by <@U0BOB> and <@U0CAT>"},
		{"three approvers", store.Job{RequestedBy: "U0ANN", ApprovedBy: []string{"U0BOB", "U0CAT", "W0DAN"}},
			"requested by <@U0ANN>, approved by <@U0BOB>, <@U0CAT> and <@W0DAN>"},
		{"verified wins over a tag", store.Job{RequestedBy: "U0ANN", TaggedBy: "U0EVE"}, "requested by <@U0ANN>"},
		{"tagged user", store.Job{TaggedBy: "U0ANN"}, "tagged as requested by <@U0ANN>"},
		{"tag with markdown", store.Job{TaggedBy: "*ann*_~x~"}, "tagged as requested by `*ann*_~x~`"},
		{"tag with markup", store.Job{TaggedBy: "<!channel> `x` & y"}, "tagged as requested by `&lt;!channel&gt; 'x' &amp; y`"},
		{"tag that looks like a mention", store.Job{TaggedBy: "<@U0BOB>"}, "tagged as requested by `&lt;@U0BOB&gt;`"},
		{"untagged outside launch", store.Job{}, "started outside cutoverbot (console or API)"},
		{"older record", store.Job{StartedBy: "U0BOB"}, "started by <@U0BOB>"},
	}
	for _, tt := range tests {
		if got := LaunchedBy(tt.job); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
