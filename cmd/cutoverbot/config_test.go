package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// goodEnv is a valid configuration for the config tests; configWith returns it with overrides.
var goodEnv = map[string]string{
	"SLACK_APP_TOKEN": "xapp-1", "SLACK_BOT_TOKEN": "xoxb-1", "CUTOVER_CHANNEL": "C123",
	"CUTOVER_OPERATORS": "U1A", "CUTOVER_APPROVERS": "S1B", "AWS_REGION": "eu-central-1",
}

func configWith(over map[string]string) func(string) string {
	env := map[string]string{}
	for k, v := range goodEnv {
		env[k] = v
	}
	for k, v := range over {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

// TestConfigPrintsNoSecret: however the configuration is printed or logged, no secret shows.
func TestConfigPrintsNoSecret(t *testing.T) {
	secrets := map[string]string{
		"SLACK_APP_TOKEN":       "xapp-1-A0SECRET-appsecret",
		"SLACK_BOT_TOKEN":       "xoxb-1-botsecret",
		"AWS_ACCESS_KEY_ID":     "AKIASECRETKEYID",
		"AWS_SECRET_ACCESS_KEY": "aws-secret-key-value",
		"AWS_SESSION_TOKEN":     "aws-session-token-value",
		"CUTOVER_DB":            "postgres://bot:db-password-value@db.example/cutover",
	}
	c, err := LoadConfig(configWith(secrets))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "cfg", c)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "cfg", c)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	// %s is not a verb vet expects for a struct, which is why the values go in as a slice.
	printed := []any{c, c, c, c, &c, &c, &c, &c}
	out := fmt.Sprintf("%v %+v %#v %s %v %+v %#v %s", printed...) + logs.String() + string(js)
	for name, v := range secrets {
		if name == "CUTOVER_DB" {
			v = "db-password-value"
		}
		if strings.Contains(out, v) {
			t.Errorf("%s shows in the printed configuration:\n%s", name, out)
		}
	}
}

// TestConfigDB: CUTOVER_DB forms that are PostgreSQL or SQLite are taken; anything else is
// refused, naming CUTOVER_DB and without the password.
func TestConfigDB(t *testing.T) {
	const pw = "pw-in-the-dsn"
	for _, dsn := range []string{
		"", "cutoverbot.db", "/data/cutoverbot.db", "sqlite:/data/cutoverbot.db",
		"postgres://bot:" + pw + "@db/cutover", "POSTGRESQL://bot:" + pw + "@db/cutover",
		"host=db user=bot password=" + pw + " dbname=cutover",
	} {
		if _, err := LoadConfig(configWith(map[string]string{"CUTOVER_DB": dsn})); err != nil {
			t.Errorf("CUTOVER_DB=%q: %v, want it accepted", dsn, err)
		}
	}
	for _, dsn := range []string{
		"mysql://bot:" + pw + "@db/cutover",
		"/data/bot.db password=" + pw,
		"bot:" + pw + "@db/cutover",
		"postgres://bot:" + pw + "@db:port/cutover",
	} {
		_, err := LoadConfig(configWith(map[string]string{"CUTOVER_DB": dsn}))
		switch {
		case err == nil:
			t.Errorf("CUTOVER_DB=%q accepted, want it refused", dsn)
		case !strings.Contains(err.Error(), "CUTOVER_DB"):
			t.Errorf("CUTOVER_DB refused with %v, want the variable named", err)
		case strings.Contains(err.Error(), pw):
			t.Errorf("CUTOVER_DB refused with an error showing the password: %v", err)
		}
	}
}

// TestConfigBounds: values that would flood the channel, hammer AWS or cut every command
// short stop start-up, naming the variable and the bound; values at the bounds start.
func TestConfigBounds(t *testing.T) {
	refused := []struct{ name, value, bound string }{
		{"CUTOVER_REMINDER_CRON", "@every 1s", "hourly"},
		{"CUTOVER_REMINDER_CRON", "* * * * *", "hourly"},
		{"CUTOVER_REMINDER_CRON", "0,30 9 * * MON", "hourly"},
		{"CUTOVER_REMINDER_CRON", "@every 59m", "hourly"},
		{"CUTOVER_REMINDER_CRON", "0 9 31 2 *", "year"},
		{"CUTOVER_REMINDER_CRON", "0 9 30 2 *", "year"},
		{"CUTOVER_POLL_INTERVAL", "1ms", "1s"},
		{"CUTOVER_POLL_INTERVAL", "999ms", "1s"},
		{"CUTOVER_WATCH_INTERVAL", "9s", "10s"},
		{"CUTOVER_COMMAND_TIMEOUT", "1ns", "5s"},
		{"CUTOVER_COMMAND_TIMEOUT", "4.9s", "5s"},
		{"CUTOVER_RETENTION", "23h", "1 day"},
		{"CUTOVER_RETENTION", "0d", "1 day"},
		{"CUTOVER_RETENTION", "forever", "400d"},
		{"CUTOVER_RETENTION", "-3d", "1 day"},
	}
	for _, tt := range refused {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := LoadConfig(configWith(map[string]string{tt.name: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.name) || !strings.Contains(err.Error(), tt.bound) {
				t.Fatalf("got %v, want an error naming %s and %q", err, tt.name, tt.bound)
			}
		})
	}
	accepted := []map[string]string{
		{"CUTOVER_REMINDER_CRON": "0 * * * *"},
		{"CUTOVER_REMINDER_CRON": "0 * * * *", "CUTOVER_TZ": "Europe/Berlin"},
		{"CUTOVER_REMINDER_CRON": "30 * * * *", "CUTOVER_TZ": "America/St_Johns"},
		{"CUTOVER_REMINDER_CRON": "@hourly"},
		{"CUTOVER_REMINDER_CRON": "@every 1h"},
		{"CUTOVER_REMINDER_CRON": "0 9 1 1 *"},
		{"CUTOVER_REMINDER_CRON": "0 9 * * MON", "CUTOVER_TZ": "Australia/Lord_Howe"},
		{"CUTOVER_POLL_INTERVAL": "1s", "CUTOVER_WATCH_INTERVAL": "10s", "CUTOVER_COMMAND_TIMEOUT": "5s"},
		{"CUTOVER_RETENTION": "24h"},
		{"CUTOVER_RETENTION": "1d"},
	}
	for _, env := range accepted {
		if _, err := LoadConfig(configWith(env)); err != nil {
			t.Errorf("%v: %v, want it accepted", env, err)
		}
	}
}

func TestConfigRetention(t *testing.T) {
	for value, want := range map[string]time.Duration{
		"":        400 * 24 * time.Hour,
		"400d":    400 * 24 * time.Hour,
		"30d":     30 * 24 * time.Hour,
		"36h":     36 * time.Hour,
		"2160h":   90 * 24 * time.Hour,
		" 7d ":    7 * 24 * time.Hour,
		"1d12h0m": 0, // not a Go duration (no d unit) and not whole days: refused
	} {
		c, err := LoadConfig(configWith(map[string]string{"CUTOVER_RETENTION": value}))
		switch {
		case want == 0 && err == nil:
			t.Errorf("CUTOVER_RETENTION=%q accepted as %v, want it refused", value, c.Retention)
		case want != 0 && err != nil:
			t.Errorf("CUTOVER_RETENTION=%q: %v", value, err)
		case want != 0 && c.Retention != want:
			t.Errorf("CUTOVER_RETENTION=%q: got %v, want %v", value, c.Retention, want)
		}
	}
}

// TestLiftBounds: the escape hatch for tests against the emulators lifts the bounds only
// when Slack and both AWS endpoints are loopback addresses, and says so in the configuration.
func TestLiftBounds(t *testing.T) {
	short := map[string]string{
		"CUTOVER_POLL_INTERVAL": "50ms", "CUTOVER_WATCH_INTERVAL": "100ms", "CUTOVER_COMMAND_TIMEOUT": "1s",
		"CUTOVER_REMINDER_CRON": "* * * * *",
		"SLACK_API_URL":         "http://127.0.0.1:4567/api/",
		"AWS_ENDPOINT_URL_MGN":  "http://localhost:4566",
		"AWS_ENDPOINT_URL_EC2":  "http://[::1]:4566",
	}
	c, err := loadConfig(configWith(short), true)
	if err != nil {
		t.Fatalf("lifted bounds against loopback endpoints: %v", err)
	}
	if !c.BoundsLifted || c.PollInterval != 50*time.Millisecond {
		t.Errorf("got BoundsLifted %v, poll %v; want true, 50ms", c.BoundsLifted, c.PollInterval)
	}
	if _, err := LoadConfig(configWith(short)); err == nil {
		t.Error("short intervals accepted without lifting the bounds")
	}
	for name, value := range map[string]string{
		"SLACK_API_URL":        "https://slack.com/api/",
		"AWS_ENDPOINT_URL_MGN": "",
		"AWS_ENDPOINT_URL_EC2": "http://10.0.0.1:4566",
	} {
		env := map[string]string{}
		for k, v := range short {
			env[k] = v
		}
		env[name] = value
		_, err := loadConfig(configWith(env), true)
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("lifted bounds with %s=%q: got %v, want an error naming it and loopback", name, value, err)
		}
	}
}

// TestRunRefusesLiftedBoundsAgainstAWS goes through the command line: -lift-bounds with the
// real AWS endpoints stops start-up before anything connects.
func TestRunRefusesLiftedBoundsAgainstAWS(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"run", "-lift-bounds"}, configWith(map[string]string{"CUTOVER_POLL_INTERVAL": "50ms"}), strings.NewReader(""), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "AWS_ENDPOINT_URL_MGN") || !strings.Contains(err.Error(), "SLACK_API_URL") {
		t.Fatalf("run -lift-bounds against Slack and AWS: got %v, want an error naming SLACK_API_URL and AWS_ENDPOINT_URL_MGN", err)
	}
}

// TestRunUsage: `cutoverbot run -h` documents the DSN forms, the bounds, retention and the
// escape hatch.
func TestRunUsage(t *testing.T) {
	var out bytes.Buffer
	_ = run(t.Context(), []string{"run", "-h"}, configWith(nil), strings.NewReader(""), &out, &out)
	for _, want := range []string{"postgresql://", "key=value", "sqlite:PATH", "CUTOVER_RETENTION", "400d",
		"at least 1s", "at least 10s", "at least 5s", "hourly", "-lift-bounds", "loopback"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("run -h does not mention %q:\n%s", want, out.String())
		}
	}
}
