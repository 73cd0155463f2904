package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/awsmgn"
	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/clock"
	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestHelpAndMalformed(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	tests := []struct {
		name, text string
		want       []string
	}{
		{"empty", "", []string{"/cutover status [SERVER]", "/cutover launch SERVER test|cutover", "Examples"}},
		{"help", "help", []string{"/cutover jobs [SERVER]", "/cutover finalize SERVER"}},
		{"unknown word", "deploy web01", []string{"I did not understand `deploy`", "/cutover status"}},
		{"launch without mode", "launch web01", []string{"`launch` needs a SERVER and a mode", "Usage: `/cutover launch SERVER test|cutover`"}},
		{"launch with a wrong mode", "launch web01 prod", []string{"must be `test` or `cutover`, not `prod`"}},
		{"ready without server", "ready", []string{"`ready` needs a SERVER", "Usage: `/cutover ready SERVER`"}},
		{"mixed case", "HELP", []string{"/cutover audit [SERVER]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.run(operator, tt.text)
			contains(t, "answer to /cutover "+tt.text, got, tt.want...)
		})
	}
	if n := r.mgn.Calls("StartTest") + r.mgn.Calls("StartCutover"); n != 0 {
		t.Errorf("launches after malformed commands: got %d, want 0", n)
	}
}

func TestStatusFleet(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{config: func(c *Config) { c.CutoverDate = start.Add(12 * 24 * time.Hour) }})
	got := r.run(eve, "status")
	contains(t, "status", got,
		"Migration status · 8 servers",
		"*Replication:* 4 Continuous Data Replication",
		"1 Stalled", "1 Initial sync", "1 Backlog",
		"*Lifecycle:* 4 Ready for testing",
		"🔴 1 stalled or failing · 🟠 1 lagging · 🔵 1 syncing",
		"*Planned cutover:* Sat 15 Mar 2025, in 12 days · 1 of 8 servers cut over",
		"Initial sync 63%, ETA 16:22 UTC",
		"Stalled: the agent has not been seen",
	)
	lacks(t, "status", got, "web01-archived")
	// Problems first: stalled, then lagging, then syncing, then the healthy, then the done.
	order := []string{"*file01*", "*mq01*", "*web02*", "*api01*", "*app01*", "*db01*", "*web01*", "*legacy01*"}
	last := -1
	for _, name := range order {
		i := strings.Index(got, name)
		if i < 0 {
			t.Fatalf("status: no line for %s in %q", name, got)
		}
		if i < last {
			t.Errorf("status: %s at %d comes before the server listed before it (at %d); want problems first, order %v", name, i, last, order)
		}
		last = i
	}
	if strings.Contains(got, "Next page") {
		t.Errorf("status of 8 servers: got a Next page button, want none")
	}
}

func TestStatusPagesThousandsOfServers(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{fleet: mgnemu.GenerateFleet(3000, start)})
	r.run(operator, "status")
	eph := r.slack.Ephemerals(operator)
	first := eph[len(eph)-1]
	checkLimits(t, first)
	text := first.PlainText()
	contains(t, "page 1", text, "Page 1 of 30", "servers 1–100 of 2925", "[Next page]", "🔴 150 stalled or failing")
	if !strings.Contains(strings.SplitN(text, "\n----\n", 2)[1][:200], "🔴") {
		t.Errorf("page 1 does not start with a problem: %q", text[:400])
	}
	btns := first.Buttons()
	if len(btns) != 1 || btns[0].ActionID != render.ActionStatusPage || btns[0].Value != "2" {
		t.Fatalf("page 1 buttons: got %+v, want one %s button with value 2", btns, render.ActionStatusPage)
	}

	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if _, err := r.slack.ClickEphemeral(ctx, operator, render.ActionStatusPage); err != nil {
		t.Fatal(err)
	}
	r.h.Interaction(t.Context(), r.receiveClick(ctx))
	eph = r.slack.Ephemerals(operator)
	if len(eph) != 1 {
		t.Fatalf("after Next page: got %d ephemeral messages, want the one replaced in place", len(eph))
	}
	second := eph[0]
	checkLimits(t, second)
	contains(t, "page 2", second.PlainText(), "Page 2 of 30", "servers 101–200 of 2925")
	if second.Edits != 1 {
		t.Errorf("page 2 edits: got %d, want 1 (replace_original)", second.Edits)
	}
}

// checkLimits fails when a message breaks Slack's Block Kit limits.
func checkLimits(t *testing.T, m slackemu.Message) {
	t.Helper()
	if len(m.Blocks) > render.MaxBlocks {
		t.Errorf("got %d blocks, want at most %d", len(m.Blocks), render.MaxBlocks)
	}
	for i, raw := range m.Blocks {
		var b struct {
			Type string `json:"type"`
			Text struct {
				Text string `json:"text"`
			} `json:"text"`
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		if n := len([]rune(b.Text.Text)); b.Type == "section" && n > render.MaxSectionText {
			t.Errorf("block %d: got %d characters, want at most %d", i, n, render.MaxSectionText)
		}
	}
}

func TestStatusLimitsDirect(t *testing.T) {
	t.Parallel()
	// The renderer alone, for sizes between the emulator-backed cases.
	h := New(slog.New(slog.DiscardHandler), nil, nil, nil, nil, nil, Config{Clock: clock.NewManual(start)})
	all := toDomain(t, mgnemu.GenerateFleet(3000, start))
	for _, n := range []int{0, 1, 99, 100, 101, len(all)} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			fleet := all[:n]
			m := h.fleetMessage(fleet, 1, nil)
			if len(m.Blocks) > render.MaxBlocks {
				t.Errorf("%d servers: got %d blocks, want at most %d", n, len(m.Blocks), render.MaxBlocks)
			}
			for i, b := range m.Blocks {
				if s, ok := b.(*slack.SectionBlock); ok && len([]rune(s.Text.Text)) > render.MaxSectionText {
					t.Errorf("%d servers: block %d has %d characters, want at most %d", n, i, len([]rune(s.Text.Text)), render.MaxSectionText)
				}
			}
			servers := 0
			for _, b := range m.Blocks {
				if s, ok := b.(*slack.SectionBlock); ok {
					servers += strings.Count(s.Text.Text, "`s-")
				}
			}
			if want := min(len(fleet), statusPageSize); servers != want {
				t.Errorf("%d servers: got %d server lines on page 1, want %d", n, servers, want)
			}
		})
	}
}

func TestFleetListingShared(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.mgn.SetLatency("DescribeSourceServers", 100*time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if _, err := r.h.fleetServers(t.Context(), false); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := r.mgn.Calls("DescribeSourceServers"); n != 1 {
		t.Errorf("50 concurrent listings: got %d DescribeSourceServers calls, want 1", n)
	}
	if _, err := r.h.fleetServers(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if n := r.mgn.Calls("DescribeSourceServers"); n != 1 {
		t.Errorf("a listing within FleetTTL: got %d calls, want 1 (cached)", n)
	}
	r.clock.Advance(6 * time.Second)
	if _, err := r.h.fleetServers(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if n := r.mgn.Calls("DescribeSourceServers"); n != 2 {
		t.Errorf("a listing after FleetTTL: got %d calls, want 2", n)
	}
}

func TestStatusServer(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	got := r.run(eve, "status app01")
	contains(t, "status app01", got,
		"*app01*", "`"+mgnemu.SampleApp01+"`", "app01.corp.example.com",
		"*Replication:* Continuous Data Replication",
		"*Lag:* 2 s", "*Backlog:* 0 B", "*Last snapshot:*",
		"`/dev/sda`: 50 GiB of 50 GiB (100%)",
		"*Lifecycle:* Test in progress",
		"*Last test:* Sat 22 Feb 14:02 UTC (9 days ago), job `mgnjob-",
		"*Last cutover:* never",
		"*Launched instance:* `i-", "running", "private ",
		"*Replication server:* `i-",
	)
	got = r.run(eve, "status web02")
	contains(t, "status web02", got, "Initial sync 63%, ETA 16:22 UTC", "*Lag:* not reported yet", "*Launched instance:* none yet")
}

func TestUnknownAndAmbiguousServer(t *testing.T) {
	t.Parallel()
	twin := mgnemu.SampleFleet(start)[0] // web01
	twin.SourceServerID = mgnemu.StableID("s-", "web01-twin")
	twin.SourceProperties.IdentificationHints.FQDN = "web01.branch.example.com"
	twin.LaunchedInstance = nil
	r := newRig(t, rigOptions{fleet: append(mgnemu.SampleFleet(start), twin)})

	tests := []struct {
		name, text string
		want       []string
		unwanted   []string
	}{
		{"unknown with suggestions", "status web0", []string{"No server matches `web0`.", "Did you mean", "*web01*", "*web02*"}, nil},
		{"unknown without suggestions", "status zzz", []string{"No server matches `zzz`.", "`/cutover status`"}, nil},
		{"ambiguous", "status web01", []string{"`web01` matches 2 servers; name one by its ID:", mgnemu.SampleWeb01, twin.SourceServerID, "web01.branch.example.com"}, []string{"*Replication:*"}},
		{"ambiguous launch", "launch web01 test", []string{"matches 2 servers"}, nil},
		{"by fqdn", "status web01.branch.example.com", []string{"`" + twin.SourceServerID + "`"}, []string{mgnemu.SampleWeb01}},
		{"unknown in a list", "launch web02,nope test", []string{"No server matches `nope`."}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.run(operator, tt.text)
			contains(t, tt.text, got, tt.want...)
			lacks(t, tt.text, got, tt.unwanted...)
		})
	}
	if n := r.mgn.Calls("StartTest"); n != 0 {
		t.Errorf("StartTest calls: got %d, want 0 (never guess)", n)
	}
}

func TestLaunchTestRefused(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	tests := []struct {
		name, user, text string
		want             []string
	}{
		{"syncing", operator, "launch web02 test", []string{
			"a test launch of web02 cannot start yet",
			"❌ *Replication:* Initial sync 63%, ETA Mar 3 16:22 UTC",
			"❌ *Lifecycle:* Not ready"}},
		{"stalled", operator, "launch file01 test", []string{"❌ *Replication:* Stalled: the agent has not been seen", "TCP 443"}},
		{"lagging", operator, "launch mq01 test", []string{"Backlog, not Continuous Data Replication"}},
		{"cut over", operator, "launch legacy01 test", []string{"Cutover complete; a test launch needs"}},
		{"several, each failure named", operator, "launch web02, file01 test", []string{"web02 · *Replication:*", "file01 · *Replication:*"}},
		{"not an operator", eve, "launch web01 test", []string{"only the cutover operators may launch a test", "<@U0OPER>", "<!subteam^S0OPS>"}},
		{"approver is not an operator", bob, "launch web01 test", []string{"only the cutover operators"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			contains(t, tt.text, r.run(tt.user, tt.text), tt.want...)
		})
	}
	if n := r.mgn.Calls("StartTest"); n != 0 {
		t.Errorf("StartTest calls: got %d, want 0", n)
	}
	log, err := r.store.AuditLog(t.Context(), mgnemu.SampleWeb02, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) == 0 || log[0].Outcome != "refused: pre-flight failed" {
		t.Errorf("audit of web02: got %+v, want a pre-flight refusal", log)
	}
}

func TestLaunchTest(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	got := r.runIn(carol, otherChannel, "launch web01 test") // carol is an operator through S0OPS
	if n := r.mgn.Calls("StartTest"); n != 1 {
		t.Fatalf("StartTest calls: got %d, want 1", n)
	}
	calls := r.follower.Calls()
	if len(calls) != 1 || calls[0].requestedBy != carol || calls[0].approvedBy != nil {
		t.Fatalf("Follow calls: got %+v, want one by %s", calls, carol)
	}
	job := calls[0].job
	contains(t, "answer", got, "Test launch of web01 started: job `"+job.ID+"`",
		"<https://slack.com/archives/C0MIGRATE/p"+strings.ReplaceAll(calls[0].parentTS, ".", "")+"|its thread>",
		"in <#C0MIGRATE>")
	jobs := r.mgn.Jobs()
	if len(jobs) != 1 || jobs[0].Tags[migration.TagRequestedBy] != carol || jobs[0].Tags[migration.TagRequest] == "" || jobs[0].InitiatedBy != "START_TEST" {
		t.Errorf("MGN job: got %+v, want a START_TEST tagged with the requester and a request ID", jobs)
	}
	if st := r.lifecycle(mgnemu.SampleWeb01); st != "TESTING" {
		t.Errorf("web01 lifecycle: got %s, want TESTING", st)
	}
	// A second launch while the first runs is refused by the pre-flight, not by MGN.
	got = r.run(operator, "launch web01 test")
	contains(t, "second launch", got, "job "+job.ID+" is still running")
	if n := r.mgn.Calls("StartTest"); n != 1 {
		t.Errorf("StartTest calls after a second launch: got %d, want 1", n)
	}
	// The reminder's Launch test button launches as the clicker.
	ts, err := r.poster.Post(t.Context(), migrationChannel, bot.Message{Text: "reminder", Blocks: []slack.Block{
		section("api01 was never tested"),
		slack.NewActionBlock("remind", render.Button(render.ActionLaunchTest, "Launch test", mgnemu.SampleAPI01, "")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	got = r.click(operator, ts, render.ActionLaunchTest)
	contains(t, "Launch test button", got, "Test launch of api01 started")
	if calls := r.follower.Calls(); len(calls) != 2 || calls[1].requestedBy != operator {
		t.Errorf("Follow calls after the button: got %+v, want a second by %s", calls, operator)
	}
}

func TestAWSErrorsInWords(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	tests := []struct {
		op, errType string
		status      int
		want        string
	}{
		{"StartTest", "ThrottlingException", 429, "AWS is throttling requests right now"},
		{"StartTest", "AccessDeniedException", 403, "the bot's AWS role is not allowed"},
		{"StartTest", "UninitializedAccountException", 400, "not initialized in this region"},
		{"StartTest", "ConflictException", 409, "MGN refused"},
		{"StartTest", "InternalServerException", 500, "service unavailable"},
		{"StartTest", "TeapotException", 418, "something went wrong (ref "},
	}
	for _, tt := range tests {
		t.Run(tt.errType, func(t *testing.T) {
			r.mgn.Fail(tt.op, 10, tt.status, tt.errType)
			defer r.mgn.Fail(tt.op, 0, 0, "")
			got := r.run(operator, "launch web01 test")
			contains(t, tt.errType, got, "Could not start the test launch of web01", tt.want)
		})
	}
	if n := len(r.follower.Calls()); n != 0 {
		t.Errorf("Follow calls after failed launches: got %d, want 0", n)
	}
}

func TestPanicAnswered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		breakIt func(h *Handler)
	}{
		{"in the handler", func(h *Handler) { h.store = nil }},
		{"in the shared fetch", func(h *Handler) { h.aws = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, rigOptions{})
			tt.breakIt(r.h)
			contains(t, "panic", r.run(operator, "status"), "something went wrong (ref ")
		})
	}
}

// requestCutover has the requester ask for a cutover of db01 and returns the card.
func requestCutover(t *testing.T, r *rig, requester string) slackemu.Message {
	t.Helper()
	got := r.run(requester, "launch db01 cutover")
	contains(t, "cutover request", got, "waits for an approver", "confirmation card", "<#C0MIGRATE>")
	return r.lastCard()
}

func TestCutoverCardGolden(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	if n := r.mgn.Calls("StartCutover"); n != 0 {
		t.Fatalf("StartCutover before a confirmation: got %d calls, want 0", n)
	}
	btns := card.Buttons()
	if len(btns) != 2 {
		t.Fatalf("card buttons: got %+v, want Confirm and Cancel", btns)
	}
	if b := btns[0]; b.ActionID != render.ActionConfirm || b.Style != "danger" || !b.Confirm || b.Text != "Confirm cutover" {
		t.Errorf("confirm button: got %+v, want a danger Confirm cutover with a confirm dialog", b)
	}
	if b := btns[1]; b.ActionID != render.ActionCancel || b.Value != btns[0].Value {
		t.Errorf("cancel button: got %+v, want Cancel carrying the confirmation ID", b)
	}
	c, err := r.store.Confirmation(t.Context(), btns[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if c.MessageTS != card.TS || c.Channel != migrationChannel || c.RequestedBy != operator || !c.ExpiresAt.Equal(start.Add(30*time.Minute)) {
		t.Errorf("stored confirmation: got %+v, want the card's place, the requester and a 30 min expiry", c)
	}
	var out bytes.Buffer
	out.WriteString("[\n")
	for i, raw := range card.Blocks {
		var b bytes.Buffer
		if err := json.Indent(&b, raw, "  ", "  "); err != nil {
			t.Fatal(err)
		}
		out.WriteString("  ")
		out.Write(b.Bytes())
		if i < len(card.Blocks)-1 {
			out.WriteString(",")
		}
		out.WriteString("\n")
	}
	out.WriteString("]\n")
	got := strings.ReplaceAll(out.String(), c.ID, "CONFIRMATION-ID")
	golden(t, got)
}

// golden compares got with testdata/<TestName>.golden, rewriting it under -update.
func golden(t *testing.T, got string) {
	t.Helper()
	path := filepath.Join("testdata", t.Name()+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run go test -update to accept):\ngot:\n%s\nwant:\n%s", t.Name(), got, want)
	}
}

func TestConfirmRefusals(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, alice)
	tests := []struct {
		name, user string
		want       []string
	}{
		{"not an approver", eve, []string{"only the cutover approvers may confirm a cutover", "<@U0ALICE>", "<!subteam^S0APPROVE>"}},
		{"an operator is not an approver", operator, []string{"only the cutover approvers"}},
		{"self-approval", alice, []string{"you asked for this yourself", "two-person rule"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			contains(t, tt.name, r.click(tt.user, card.TS, render.ActionConfirm), tt.want...)
			if now := r.message(card.TS); now.Edits != 0 || len(now.Buttons()) != 2 {
				t.Errorf("card after a refused click: got %d edits and %d buttons, want it unchanged", now.Edits, len(now.Buttons()))
			}
		})
	}
	if n := r.mgn.Calls("StartCutover"); n != 0 {
		t.Fatalf("StartCutover after refused clicks: got %d, want 0", n)
	}
	// bob is an approver through a user group.
	answer := r.click(bob, card.TS, render.ActionConfirm)
	if n := r.mgn.Calls("StartCutover"); n != 1 {
		t.Fatalf("StartCutover after bob's click: got %d, want 1", n)
	}
	now := r.message(card.TS)
	job := r.mgn.Jobs()[0]
	contains(t, "bob's answer", answer, "The cutover of db01 started: job `"+job.JobID+"`")
	contains(t, "card after confirmation", now.PlainText(), "Requested by <@U0ALICE>, approved by <@U0BOB> at 14:02 UTC — job `"+job.JobID+"`")
	if len(now.Buttons()) != 0 {
		t.Errorf("card after confirmation: got buttons %+v, want none", now.Buttons())
	}
	if job.Tags[migration.TagConfirmation] == "" || job.Tags[migration.TagApprovedBy] != bob || job.Tags[migration.TagRequestedBy] != alice {
		t.Errorf("cutover job tags: got %v, want confirmation, approved-by bob and requested-by alice", job.Tags)
	}
	// The thread is told who asked and who approved, not just whose click launched it.
	if calls := r.follower.Calls(); len(calls) != 1 || calls[0].requestedBy != alice || !slices.Equal(calls[0].approvedBy, []string{bob}) {
		t.Errorf("Follow calls: got %+v, want one requested by alice, approved by bob", calls)
	}
}

func TestSelfApprovalAllowed(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{config: func(c *Config) { c.SelfApproval = true }})
	card := requestCutover(t, r, alice)
	r.click(alice, card.TS, render.ActionConfirm)
	if n := r.mgn.Calls("StartCutover"); n != 1 {
		t.Errorf("StartCutover with self-approval on: got %d, want 1", n)
	}
}

func TestConcurrentConfirmsLaunchOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	// Ten approvers click, and each click is also delivered twice more (redeliveries).
	var clicks []slack.InteractionCallback
	for _, u := range approverIDs {
		cb := r.clickOn(u, card.TS, render.ActionConfirm)
		clicks = append(clicks, cb, cb, cb)
	}
	var wg sync.WaitGroup
	for _, cb := range clicks {
		wg.Go(func() { r.h.Interaction(t.Context(), cb) })
	}
	wg.Wait()
	r.drawCards()
	if n := r.mgn.Calls("StartCutover"); n != 1 {
		t.Fatalf("StartCutover calls after %d concurrent clicks: got %d, want 1", len(clicks), n)
	}
	if n := len(r.follower.Calls()); n != 1 {
		t.Errorf("Follow calls: got %d, want 1", n)
	}
	if n := r.slack.Calls("usergroups.users.list"); n != 1 {
		t.Errorf("usergroups.users.list calls for %d clicks: got %d, want 1 (shared and cached)", len(clicks), n)
	}
	c, err := r.store.Confirmation(t.Context(), card.Buttons()[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != store.Launched || c.JobID != r.mgn.Jobs()[0].JobID {
		t.Errorf("confirmation: got state %s job %s, want launched with the MGN job", c.State, c.JobID)
	}
	now := r.message(card.TS)
	contains(t, "card", now.PlainText(), "approved by <@"+c.DecidedBy+"> at 14:02 UTC — job `"+c.JobID+"`")
	if len(now.Buttons()) != 0 {
		t.Errorf("card buttons after confirmation: got %+v, want none", now.Buttons())
	}
	// Every other click was told who confirmed.
	told := 0
	for _, u := range approverIDs {
		for _, m := range r.slack.Ephemerals(u) {
			if strings.Contains(m.PlainText(), "already confirmed by <@"+c.DecidedBy+"> at 14:02 UTC") {
				told++
			}
		}
	}
	if want := len(clicks) - 1; told != want {
		t.Errorf("clickers told it was already confirmed: got %d, want %d", told, want)
	}
}

func TestConfirmExpired(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	contains(t, "card", card.PlainText(), "Expires at 14:32 UTC")
	r.clock.Advance(31 * time.Minute)
	got := r.click(bob, card.TS, render.ActionConfirm)
	contains(t, "late click", got, "this request expired at 14:32 UTC", "`/cutover launch "+mgnemu.SampleDB01+" cutover`")
	now := r.message(card.TS)
	contains(t, "expired card", now.PlainText(), "Expired at 14:32 UTC; nobody confirmed it and nothing was launched")
	if len(now.Buttons()) != 0 {
		t.Errorf("expired card buttons: got %+v, want none", now.Buttons())
	}
	if n := r.mgn.Calls("StartCutover"); n != 0 {
		t.Errorf("StartCutover after expiry: got %d, want 0", n)
	}
}

func TestExpireCards(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	if err := r.h.ExpireCards(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r.message(card.TS).Edits != 0 {
		t.Fatal("card edited before its expiry")
	}
	late := r.clickOn(bob, card.TS, render.ActionConfirm) // handled after the expiry
	r.clock.Advance(30 * time.Minute)
	if err := r.h.ExpireCards(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.drawCards()
	now := r.message(card.TS)
	contains(t, "expired card", now.PlainText(), "Expired at 14:32 UTC; nobody confirmed it")
	if len(now.Buttons()) != 0 || now.Edits != 1 {
		t.Errorf("expired card: got %d buttons and %d edits, want none and 1", len(now.Buttons()), now.Edits)
	}
	r.h.Interaction(t.Context(), late)
	eph := r.slack.Ephemerals(bob)
	if len(eph) != 1 {
		t.Fatalf("answers to the late click: got %d, want 1", len(eph))
	}
	contains(t, "late click", eph[0].PlainText(), "This request expired at 14:32 UTC; nothing was launched")
	if n := r.mgn.Calls("StartCutover"); n != 0 {
		t.Errorf("StartCutover: got %d, want 0", n)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	late := r.clickOn(bob, card.TS, render.ActionConfirm) // handled after the cancel
	contains(t, "cancel by a stranger", r.click(eve, card.TS, render.ActionCancel), "only the cutover operators or cutover approvers may cancel")
	if r.message(card.TS).Edits != 0 {
		t.Fatal("card changed after a refused cancel")
	}
	r.click(operator, card.TS, render.ActionCancel)
	now := r.message(card.TS)
	contains(t, "cancelled card", now.PlainText(), "Cancelled by <@U0OPER> at 14:02 UTC; nothing was launched.")
	if len(now.Buttons()) != 0 {
		t.Errorf("cancelled card buttons: got %+v, want none", now.Buttons())
	}
	// A click that was already on its way is told, and launches nothing.
	r.h.Interaction(t.Context(), late)
	eph := r.slack.Ephemerals(bob)
	if len(eph) == 0 {
		t.Fatal("late confirm after cancel: no answer")
	}
	contains(t, "late confirm", eph[len(eph)-1].PlainText(), "already cancelled by <@U0OPER>")
	if n := r.mgn.Calls("StartCutover"); n != 0 {
		t.Errorf("StartCutover after cancel: got %d, want 0", n)
	}
}

func TestConfirmRechecksPreflight(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	r.mgn.Update(mgnemu.SampleDB01, func(s *mgnemu.SourceServer) {
		s.DataReplicationInfo.DataReplicationState = "STALLED"
		s.DataReplicationInfo.DataReplicationError = &mgnemu.DataReplicationError{Error: "AGENT_NOT_SEEN", RawError: "agent gone <!channel>"}
	})
	r.click(bob, card.TS, render.ActionConfirm)
	if n := r.mgn.Calls("StartCutover"); n != 0 {
		t.Fatalf("StartCutover after replication stalled: got %d, want 0", n)
	}
	now := r.message(card.TS)
	contains(t, "card", now.PlainText(), "Requested by <@U0OPER>, approved by <@U0BOB> at 14:02 UTC, but nothing was launched", "Stalled", "agent gone &lt;!channel&gt;")
	c, err := r.store.Confirmation(t.Context(), card.Buttons()[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != store.Failed {
		t.Errorf("confirmation state: got %s, want failed", c.State)
	}
}

func TestCutoverConflictInWords(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	r.mgn.Fail("StartCutover", 1, 409, "ConflictException")
	r.click(bob, card.TS, render.ActionConfirm)
	contains(t, "card", r.message(card.TS).PlainText(), "but nothing was launched: Could not start the cutover. MGN refused")
}

func TestEscaping(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.mgn.Update(mgnemu.SampleWeb02, func(s *mgnemu.SourceServer) { s.Tags["Name"] = "web02 <!here>" })
	texts := []string{
		"<!channel>",
		"status <!channel>",
		"status",
		"status " + mgnemu.SampleWeb02,
		"launch <!channel> test",
		"launch " + mgnemu.SampleWeb02 + " test",
		"launch web01 <!channel>",
		"jobs <!channel>",
		"audit <!channel>",
		"ready <!channel>",
		"audit",
	}
	for _, text := range texts {
		t.Run(text, func(t *testing.T) {
			got := r.run(operator, text)
			lacks(t, text, got, "<!channel>", "<!here>")
		})
	}
	var all []string
	for _, m := range r.slack.Ephemerals(operator) {
		all = append(all, m.Text, string(joinBlocks(m)))
	}
	for _, m := range r.channelMessages() {
		all = append(all, m.Text, string(joinBlocks(m)))
	}
	joined := strings.Join(all, "\n")
	lacks(t, "everything sent", joined, "<!channel>", "<!here>")
	contains(t, "everything sent", joined, "&lt;!channel&gt;", "web02 &lt;!here&gt;")
}

func TestReadyAndRevert(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	tests := []struct {
		name, user, text string
		want             []string
		state            string // web01 or app01 after, "" = not checked
		id               string
	}{
		{"not an operator", eve, "ready app01", []string{"only the cutover operators"}, "TESTING", mgnemu.SampleApp01},
		{"ready after a test", operator, "ready app01", []string{"*app01*", "is now ready for cutover"}, "READY_FOR_CUTOVER", mgnemu.SampleApp01},
		{"ready again", operator, "ready app01", []string{"is already ready for cutover"}, "READY_FOR_CUTOVER", mgnemu.SampleApp01},
		{"ready without a test", operator, "ready web01", []string{"is Ready for testing; it can be marked ready for cutover only after a test launch"}, "READY_FOR_TEST", mgnemu.SampleWeb01},
		{"revert nothing", operator, "revert app01", []string{"is Ready for cutover; only a test in progress"}, "READY_FOR_CUTOVER", mgnemu.SampleApp01},
		{"revert when ready for testing", operator, "revert web01", []string{"already ready for testing"}, "READY_FOR_TEST", mgnemu.SampleWeb01},
		{"revert a cut-over server", operator, "revert legacy01", []string{"is Cutover complete"}, "CUTOVER", mgnemu.SampleLegacy01},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			contains(t, tt.text, r.run(tt.user, tt.text), tt.want...)
			if got := r.lifecycle(tt.id); got != tt.state {
				t.Errorf("%s lifecycle: got %s, want %s", tt.id, got, tt.state)
			}
		})
	}
	// A test in progress reverts to ready for testing, and the channel hears of it.
	r.run(operator, "launch web01 test")
	contains(t, "revert test", r.run(operator, "revert web01"), "reverted from Test in progress to Ready for testing")
	if got := r.lifecycle(mgnemu.SampleWeb01); got != "READY_FOR_TEST" {
		t.Errorf("web01 after revert: got %s, want READY_FOR_TEST", got)
	}
	msgs := r.channelMessages()
	contains(t, "channel notice", msgs[len(msgs)-1].PlainText(), "<@U0OPER>: *web01*", "reverted")

	// A cutover in progress reverts to ready for cutover.
	r.mgn.Update(mgnemu.SampleDB01, func(s *mgnemu.SourceServer) { s.LifeCycle.State = "CUTTING_OVER" })
	r.h.invalidate()
	contains(t, "revert cutover", r.run(operator, "revert db01"), "reverted from Cutover in progress to Ready for cutover")
}

func TestNextStepButtons(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	parent, err := r.poster.Post(t.Context(), migrationChannel, bot.Message{Text: "Test launch of app01"})
	if err != nil {
		t.Fatal(err)
	}
	report, err := r.poster.Post(t.Context(), migrationChannel, bot.Message{Text: "Test launch finished", ThreadTS: parent, Blocks: []slack.Block{
		section("app01 launched"),
		slack.NewActionBlock("next", render.Button(render.ActionMarkReady, "Mark ready for cutover", mgnemu.SampleApp01, "primary"),
			render.Button(render.ActionRevertTest, "Revert to ready for testing", mgnemu.SampleApp01, "")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "stranger", r.click(eve, report, render.ActionMarkReady), "only the cutover operators may mark servers ready for cutover")
	r.click(operator, report, render.ActionMarkReady)
	if got := r.lifecycle(mgnemu.SampleApp01); got != "READY_FOR_CUTOVER" {
		t.Fatalf("app01 after Mark ready: got %s, want READY_FOR_CUTOVER", got)
	}
	replies := r.slack.Replies(migrationChannel, parent)
	contains(t, "thread reply", replies[len(replies)-1].PlainText(), "<@U0OPER>: *app01*", "is now ready for cutover")
	// A second click, by someone else, changes nothing and says so.
	contains(t, "second click", r.click(carol, report, render.ActionMarkReady), "already ready for cutover")
	contains(t, "revert after ready", r.click(carol, report, render.ActionRevertTest), "is Ready for cutover; only a test in progress")
	if n := r.mgn.Calls("ChangeServerLifeCycleState"); n != 1 {
		t.Errorf("ChangeServerLifeCycleState calls: got %d, want 1", n)
	}
}

func TestFinalize(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	cuttingOver := func(s *mgnemu.SourceServer) {
		s.LifeCycle.State = "CUTTING_OVER"
		s.LifeCycle.LastCutover.Initiated = mgnemu.LaunchInitiated{APICallDateTime: mgnemu.FormatTime(start.Add(-time.Hour)), JobID: "mgnjob-0000000000000cut"}
	}
	r.mgn.Update(mgnemu.SampleDB01, cuttingOver)
	r.mgn.Update(mgnemu.SampleAPI01, cuttingOver)

	contains(t, "stranger", r.run(eve, "finalize db01"), "only the cutover operators or cutover approvers may ask to finalize a cutover")
	contains(t, "not cutting over", r.run(alice, "finalize web01"), "cannot be finalized yet", "Ready for testing; finalizing needs a launched cutover")

	// An operator asks (one policy for every irreversible action); an approver confirms.
	got := r.run(operator, "finalize db01")
	contains(t, "request", got, "The finalize of db01 waits for an approver other than you")
	card := r.lastCard()
	contains(t, "finalize card", card.PlainText(), "Finalize cutover requested: db01", "Enable termination protection on the cutover instance first", "cannot be undone", "[Finalize cutover]")
	contains(t, "second request", r.run(alice, "finalize db01"), "A finalize request for db01 is already waiting")
	contains(t, "operator confirm", r.click(operator, card.TS, render.ActionConfirm), "only the cutover approvers may confirm a finalize")
	contains(t, "bob confirms", r.click(bob, card.TS, render.ActionConfirm), "Finalize:", "*db01*", "cutover finalized")
	if n := r.mgn.Calls("FinalizeCutover"); n != 1 {
		t.Fatalf("FinalizeCutover calls: got %d, want 1", n)
	}
	if got := r.lifecycle(mgnemu.SampleDB01); got != "CUTOVER" {
		t.Errorf("db01 after finalize: got %s, want CUTOVER", got)
	}
	contains(t, "finalized card", r.message(card.TS).PlainText(), "Requested by <@U0OPER>, approved by <@U0BOB>", "cutover finalized")

	// The notifier's Finalize button asks the same way: it opens one card, and never finalizes
	// by itself however often it is clicked.
	ts, err := r.poster.Post(t.Context(), migrationChannel, bot.Message{Text: "cutover done", Blocks: []slack.Block{
		section("api01 cut over"),
		slack.NewActionBlock("final", render.Button(render.ActionFinalize, "Finalize cutover", mgnemu.SampleAPI01, "danger")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "stranger click", r.click(eve, ts, render.ActionFinalize), "only the cutover operators or cutover approvers")
	var clicks []slack.InteractionCallback
	for _, u := range approverIDs[:5] {
		clicks = append(clicks, r.clickOn(u, ts, render.ActionFinalize))
	}
	var wg sync.WaitGroup
	for _, cb := range clicks {
		wg.Go(func() { r.h.Interaction(t.Context(), cb) })
	}
	wg.Wait()
	if n := r.mgn.Calls("FinalizeCutover"); n != 1 {
		t.Errorf("FinalizeCutover calls after 5 button clicks: got %d, want still 1", n)
	}
	cards := 0
	for _, m := range r.channelMessages() {
		if strings.Contains(m.PlainText(), "Finalize cutover requested: api01") {
			cards++
		}
	}
	if cards != 1 {
		t.Fatalf("finalize cards for api01 after 5 clicks: got %d, want 1", cards)
	}
	card = r.lastCard()
	c, err := r.store.Confirmation(t.Context(), cardID(t, r, card.TS))
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "requester confirms", r.click(c.RequestedBy, card.TS, render.ActionConfirm), "two-person rule")
	r.click(bob, card.TS, render.ActionConfirm)
	if n := r.mgn.Calls("FinalizeCutover"); n != 2 || r.lifecycle(mgnemu.SampleAPI01) != "CUTOVER" {
		t.Errorf("after bob confirmed api01: got %d FinalizeCutover calls and %s, want 2 and CUTOVER", n, r.lifecycle(mgnemu.SampleAPI01))
	}
}

func TestJobsAndAudit(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	contains(t, "no jobs", r.run(eve, "jobs"), "none in the last 30 days")
	r.run(operator, "launch web01 test")
	// A job the bot does not follow, started in the console.
	if _, err := r.aws.Launch(t.Context(), migration.LaunchRequest{Mode: migration.ModeTest, ServerIDs: []string{mgnemu.SampleApp01}, Request: "console"}); err != nil {
		t.Fatal(err)
	}
	// The bot's job is recorded by the follower in real life; here, by hand.
	call := r.follower.Calls()[0]
	if _, err := r.store.FollowJob(t.Context(), migration.Launch{JobID: call.job.ID, Kind: "test", ServerIDs: []string{mgnemu.SampleWeb01},
		Channel: migrationChannel, ParentTS: call.parentTS, RequestedBy: operator, StartedAt: start}); err != nil {
		t.Fatal(err)
	}
	got := r.run(eve, "jobs")
	contains(t, "jobs", got, "`"+call.job.ID+"` · test · web01", "requested by <@U0OPER>",
		"<https://slack.com/archives/C0MIGRATE/p"+strings.ReplaceAll(call.parentTS, ".", "")+"|thread>",
		"test · app01", "started outside cutoverbot (console or API)")
	got = r.run(eve, "jobs app01")
	lacks(t, "jobs app01", got, "web01")

	got = r.run(eve, "audit web01")
	contains(t, "audit web01", got, "Audit log of web01 · newest first", "<@U0OPER> *StartTest* `"+mgnemu.SampleWeb01+"` → started `"+call.job.ID+"`")
	if i, j := strings.Index(got, "StartTest"), strings.Index(got, "launch test"); j >= 0 && j < i {
		t.Errorf("audit: got the older entry first in %q, want newest first", got)
	}
}

// toDomain reads fixtures through the MGN emulator and the real adapter, as the handler would.
func toDomain(t *testing.T, fleet []mgnemu.SourceServer) []migration.Server {
	t.Helper()
	m := mgnemu.New(mgnemu.Options{Now: func() time.Time { return start }, Servers: fleet})
	if err := m.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := awsmgn.New(aws.Config{Region: "eu-central-1", Credentials: aws.AnonymousCredentials{}},
		awsmgn.Options{MGNEndpoint: m.URL(), EC2Endpoint: m.URL()})
	servers, err := c.Servers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return servers
}

func TestAnswerFallsBackToEphemeral(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	cmd := r.command(eve, otherChannel, "status web01")
	r.clock.Advance(31 * time.Minute) // the response URL has expired
	r.h.SlashCommand(t.Context(), cmd)
	eph := r.slack.Ephemerals(eve)
	if len(eph) != 1 {
		t.Fatalf("ephemeral answers: got %d, want 1 through chat.postEphemeral", len(eph))
	}
	if eph[0].Channel != otherChannel {
		t.Errorf("answer channel: got %s, want %s", eph[0].Channel, otherChannel)
	}
	contains(t, "answer", eph[0].PlainText(), "*web01*")
	if n := r.slack.Calls("chat.postEphemeral"); n != 1 {
		t.Errorf("chat.postEphemeral calls: got %d, want 1", n)
	}
}
