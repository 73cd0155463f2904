package handlers

import (
	"context"
	"strings"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
)

// command is a parsed /cutover text.
type command struct {
	name    string         // help, status, launch, jobs, ready, revert, finalize, audit
	servers string         // the SERVER argument, "" when absent
	mode    migration.Mode // launch only
	problem string         // why the text was not understood (mrkdwn, escaped); "" when it was
	text    string         // the whole text, as typed
}

// usage lines, shown in help and with each malformed command.
var usages = map[string]string{
	"status":   "`/cutover status [SERVER]` — the fleet and its waves, one server in detail, or a wave's or application's servers",
	"launch":   "`/cutover launch SERVER test|cutover` — a test launch, or a cutover behind an approver's confirmation; of a wave or application, the servers that pass the checks",
	"jobs":     "`/cutover jobs [SERVER]` — recent launch jobs and their threads",
	"ready":    "`/cutover ready SERVER` — after a good test: mark ready for cutover",
	"revert":   "`/cutover revert SERVER` — back out of a test, or of a cutover in progress",
	"finalize": "`/cutover finalize SERVER` — after a verified cutover: finalize it (approvers, with confirmation)",
	"audit":    "`/cutover audit [SERVER]` — who did what, newest first",
	"help":     "`/cutover help` — this text",
}

var usageOrder = []string{"status", "launch", "jobs", "ready", "revert", "finalize", "audit", "help"}

// parse reads a /cutover command's text. Anything malformed becomes a help command with the
// problem set.
func parse(text string) command {
	c := command{text: text}
	words := strings.Fields(text)
	if len(words) == 0 {
		c.name = "help"
		return c
	}
	name := strings.ToLower(words[0])
	args := words[1:]
	switch name {
	case "help", "-h", "--help", "?":
		c.name = "help"
	case "status", "jobs", "audit":
		c.name = name
		c.servers = strings.Join(args, " ")
	case "ready", "revert", "finalize":
		c.name = name
		c.servers = strings.Join(args, " ")
		if c.servers == "" {
			return bad(c, name, "`"+name+"` needs a SERVER.")
		}
	case "launch":
		c.name = name
		if len(args) < 2 {
			return bad(c, name, "`launch` needs a SERVER and a mode, `test` or `cutover`.")
		}
		mode := strings.ToLower(args[len(args)-1])
		switch migration.Mode(mode) {
		case migration.ModeTest, migration.ModeCutover:
			c.mode = migration.Mode(mode)
		default:
			return bad(c, name, "The launch mode must be `test` or `cutover`, not "+code(args[len(args)-1])+".")
		}
		c.servers = strings.Join(args[:len(args)-1], " ")
	default:
		c.name = "help"
		c.problem = "I did not understand " + code(words[0]) + "."
	}
	return c
}

func bad(c command, name, problem string) command {
	c.name = "help"
	c.problem = problem + "\nUsage: " + usages[name]
	return c
}

// runCommand dispatches a parsed command.
func (h *Handler) runCommand(ctx context.Context, o origin, c command) {
	switch c.name {
	case "status":
		if c.servers == "" {
			h.audit(ctx, store.AuditEntry{User: o.user, Action: actStatus, Outcome: "answered"})
			h.statusFleet(ctx, o, 1, false)
			return
		}
		h.statusServers(ctx, o, c.servers)
	case "launch":
		h.launch(ctx, o, c.servers, c.mode, "/cutover "+c.text)
	case "jobs":
		h.jobs(ctx, o, c.servers)
	case "audit":
		h.auditLog(ctx, o, c.servers)
	case "ready":
		h.ready(ctx, o, c.servers)
	case "revert":
		h.revert(ctx, o, c.servers)
	case "finalize":
		h.requestFinalize(ctx, o, c.servers)
	default:
		if c.problem != "" {
			h.audit(ctx, store.AuditEntry{User: o.user, Action: actCommand, Outcome: "not understood", Detail: render.Truncate(c.text, 200)})
		}
		h.reply(ctx, o, helpMessage(c.problem))
	}
}

// helpMessage is the usage, led by what was not understood.
func helpMessage(problem string) bot.Message {
	var lines []string
	for _, n := range usageOrder {
		lines = append(lines, "• "+usages[n])
	}
	body := strings.Join(lines, "\n") +
		"\n\nSERVER is a source server ID (`s-…`), a hostname or FQDN, or its Name tag; name several with commas. " +
		"It may also be a whole MGN wave or application: `wave NAME` or `app NAME`, NAME in double quotes when it has spaces, or the ID (`wave-…`, `app-…`)." +
		"\nExamples: `/cutover status web01` · `/cutover launch web01,app01 test` · `/cutover launch db01 cutover`" +
		"\nWaves: `/cutover status wave \"Wave 1\"` · `/cutover launch app billing test` · `/cutover launch wave \"Wave 2\" cutover` · `/cutover ready wave \"Wave 1\"`"
	var blocks []slack.Block
	if problem != "" {
		blocks = append(blocks, section(problem))
	}
	blocks = append(blocks, section("*/cutover* drives the migration to AWS:\n"+body))
	text := "Usage: /cutover help"
	if problem != "" {
		text = fallback(problem)
	}
	return bot.Message{Text: text, Blocks: blocks}
}
