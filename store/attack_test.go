package store_test

import (
	"strings"
	"testing"

	"github.com/cutoverbot/cutoverbot/store"
)

// Finding: a PostgreSQL URL that lost its scheme or the scheme's colon
// ("//bot:PW@db/cutover", "postgres//bot:PW@db/cutover") has a '/' before its
// "user:password@", so the userinfo check (which reads up to the first '/') misses it and
// ParseDSN takes it as an SQLite file path: the password becomes part of a file name, is
// logged as the store's target ("store opened … db=…") and quoted in Open's errors
// ("open //bot:PW@…: unable to open database file"), and replicas silently stop sharing
// state. The README promises that user:password@host without a scheme stops start-up.
func TestAttackDSNWithoutSchemeColon(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"//bot:" + password + "@db.example:5432/cutover",
		"postgres//bot:" + password + "@db.example:5432/cutover",
		"/bot:" + password + "@db.example/cutover",
	} {
		t.Run(strings.ReplaceAll(dsn, password, "PW"), func(t *testing.T) {
			d, err := store.ParseDSN(dsn)
			if err == nil {
				t.Errorf("ParseDSN = %s %q, want an error", d.Backend, strings.ReplaceAll(d.Target, password, "PW"))
			}
			if strings.Contains(d.Target, password) {
				t.Errorf("the parsed target holds the password: it is logged and becomes a file name")
			}
		})
	}
}
