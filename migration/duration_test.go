package migration_test

import (
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/migration"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{name: "zero days", in: "P0D", want: 0},
		{name: "seconds", in: "PT5S", want: 5 * time.Second},
		{name: "hours minutes fractional seconds", in: "PT16H20M38.697305S",
			want: 16*time.Hour + 20*time.Minute + 38*time.Second + 697305*time.Microsecond},
		{name: "days and hours", in: "P1DT2H", want: 26 * time.Hour},
		{name: "half a second", in: "PT0.5S", want: 500 * time.Millisecond},
		{name: "weeks", in: "P2W", want: 14 * 24 * time.Hour},
		{name: "minutes only", in: "PT7M30S", want: 7*time.Minute + 30*time.Second},
		{name: "empty", in: "", wantErr: true},
		{name: "bare P", in: "P", wantErr: true},
		{name: "bare PT", in: "PT", wantErr: true},
		{name: "no P prefix", in: "5S", wantErr: true},
		{name: "years refused", in: "P1Y", wantErr: true},
		{name: "months refused", in: "P1M", wantErr: true},
		{name: "no number", in: "PTXS", wantErr: true},
		{name: "hours before T", in: "P1H", wantErr: true},
		{name: "days after T", in: "PT1D", wantErr: true},
		{name: "two T", in: "PT1HT2M", wantErr: true},
		{name: "trailing number", in: "PT5", wantErr: true},
		{name: "two dots", in: "PT1.2.3S", wantErr: true},
		{name: "lower case", in: "pt5s", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := migration.ParseDuration(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseDuration(%q) = %v, nil; want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDuration(%q): got error %v, want %v", tt.in, err, tt.want)
			}
			if got != tt.want {
				t.Errorf("ParseDuration(%q): got %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Time
		wantErr bool
	}{
		{name: "offset with microseconds", in: "2022-08-31T14:33:26.983505+00:00",
			want: time.Date(2022, 8, 31, 14, 33, 26, 983505000, time.UTC)},
		{name: "Z without fraction", in: "2022-08-31T14:33:26Z", want: time.Date(2022, 8, 31, 14, 33, 26, 0, time.UTC)},
		{name: "other offset becomes UTC", in: "2022-08-31T16:33:26+02:00", want: time.Date(2022, 8, 31, 14, 33, 26, 0, time.UTC)},
		{name: "empty is zero", in: "", want: time.Time{}},
		{name: "space separated", in: "2022-08-31 14:33:26", wantErr: true},
		{name: "no zone", in: "2022-08-31T14:33:26", wantErr: true},
		{name: "words", in: "yesterday", wantErr: true},
		{name: "date only", in: "2022-08-31", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := migration.ParseTime(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseTime(%q) = %v, nil; want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTime(%q): got error %v, want %v", tt.in, err, tt.want)
			}
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("ParseTime(%q): got %v (%v), want %v in UTC", tt.in, got, got.Location(), tt.want)
			}
		})
	}
}

func TestFormatTime(t *testing.T) {
	in := time.Date(2022, 8, 31, 16, 33, 26, 983505123, time.FixedZone("CEST", 2*60*60))
	got := migration.FormatTime(in)
	if want := "2022-08-31T14:33:26.983505+00:00"; got != want {
		t.Fatalf("FormatTime: got %q, want %q", got, want)
	}
	back, err := migration.ParseTime(got)
	if err != nil {
		t.Fatalf("ParseTime(FormatTime): %v", err)
	}
	if want := in.Truncate(time.Microsecond); !back.Equal(want) {
		t.Errorf("round trip: got %v, want %v", back, want)
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0 s"},
		{45 * time.Second, "45 s"},
		{59*time.Second + 999*time.Millisecond, "59 s"},
		{time.Minute, "1 min"},
		{12*time.Minute + 30*time.Second, "12 min"},
		{time.Hour, "1 h"},
		{3*time.Hour + 20*time.Minute, "3 h 20 min"},
		{23*time.Hour + 59*time.Minute, "23 h 59 min"},
		{24 * time.Hour, "1 day"},
		{47 * time.Hour, "1 day"},
		{48 * time.Hour, "2 days"},
		{9*24*time.Hour + 5*time.Hour, "9 days"},
	}
	for _, tt := range tests {
		t.Run(tt.in.String(), func(t *testing.T) {
			if got := migration.HumanDuration(tt.in); got != tt.want {
				t.Errorf("HumanDuration(%v): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{name: "never", t: time.Time{}, want: "never"},
		{name: "just now", t: now, want: "0 s ago"},
		{name: "in the future", t: now.Add(time.Hour), want: "0 s ago"},
		{name: "minutes", t: now.Add(-40 * time.Minute), want: "40 min ago"},
		{name: "days", t: now.Add(-3 * 24 * time.Hour), want: "3 days ago"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := migration.Ago(tt.t, now); got != tt.want {
				t.Errorf("Ago(%v, %v): got %q, want %q", tt.t, now, got, tt.want)
			}
		})
	}
}
