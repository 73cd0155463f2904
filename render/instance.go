package render

import (
	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/migration"
)

// Instance describes EC2 instance id for a line of mrkdwn: "`i-0abc` (running)", or
// "`i-0abc` (no longer known to EC2)" when EC2 did not describe it (known is false). With
// detail it adds the type and both IPs: "`i-0abc` (running) · c5.large · private 10.0.0.12 ·
// public 54.1.2.3" ("public none" when it has none).
func Instance(id string, in migration.Instance, known, detail bool) string {
	s := "`" + bot.Escape(id) + "`"
	if !known {
		return s + " (no longer known to EC2)"
	}
	s += " (" + bot.Escape(in.State) + ")"
	if !detail {
		return s
	}
	if in.Type != "" {
		s += " · " + bot.Escape(in.Type)
	}
	return s + " · private " + bot.Escape(or(in.PrivateIP, "unknown")) + " · public " + bot.Escape(or(in.PublicIP, "none"))
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}
