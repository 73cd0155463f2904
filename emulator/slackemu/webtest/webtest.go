// Package webtest drives the Slack emulator's web view in headless Chromium, for tests. It
// finds controls by their role and accessible name, as a person with a screen reader would
// ("the button Confirm cutover", "the combobox Acting as"), and waits on conditions of the
// page, never on the clock.
//
// Open skips the test, saying why, when no Chromium is installed (Debian: apt-get install
// chromium), unless the environment has CUTOVER_TEST_BROWSER=required (as CI does): then the
// test fails.
package webtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browsers are the names Chromium and Chrome are installed under.
var browsers = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}

// Chromium returns the path of an installed Chromium or Chrome, or "" when there is none.
func Chromium() string {
	for _, name := range browsers {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Width and Height are the size of the browser's window, in CSS pixels.
const (
	Width  = 1360
	Height = 860
)

// Page is one tab showing the web view.
type Page struct {
	t   testing.TB
	ctx context.Context
	// Timeout bounds every wait and action; a test fails when one takes longer.
	Timeout time.Duration

	mu       sync.Mutex
	problems []string // uncaught exceptions and console errors of the page
}

// Open starts a fresh headless Chromium with its own profile, opens url (the web view) in
// the UTC time zone and waits until it shows the workspace. It skips t when no Chromium is
// installed. The browser stops when t ends, and t fails if the page had an uncaught
// exception or logged an error.
func Open(t testing.TB, url string) *Page {
	t.Helper()
	path := Chromium()
	if path == "" {
		why := fmt.Sprintf("no Chromium found (looked for %s on PATH); install Debian's chromium to run the browser tests", strings.Join(browsers, ", "))
		if os.Getenv("CUTOVER_TEST_BROWSER") == "required" {
			t.Fatal(why + " (CUTOVER_TEST_BROWSER=required)")
		}
		t.Skip(why)
	}
	profile := filepath.Join(t.TempDir(), "profile")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(Width, Height),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("font-render-hinting", "none"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(func(format string, args ...any) {
		t.Logf("chromedp: "+format, args...)
	}))
	p := &Page{t: t, ctx: ctx, Timeout: 60 * time.Second}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		wg.Wait()
		if probs := p.Problems(); len(probs) > 0 {
			t.Errorf("the web view had errors:\n%s", strings.Join(probs, "\n"))
		}
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser, bound to ctx and not to a timeout
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	console := chromedp.Console(ctx)
	wg.Go(func() {
		for msg, err := range console {
			if err != nil {
				return
			}
			if msg.IsException() || msg.Type == "error" || msg.Type == "assert" {
				p.mu.Lock()
				p.problems = append(p.problems, msg.String())
				p.mu.Unlock()
			}
		}
	})
	p.Do("open "+url,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "UTC"})
			return err
		}),
		chromedp.EmulateViewport(Width, Height),
		chromedp.Navigate(url),
	)
	p.WaitUntil("the web view to show the workspace", `document.body.dataset.ready === "true"`)
	return p
}

// Problems returns the page's uncaught exceptions and console errors so far.
func (p *Page) Problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

// Context returns the tab's context, for chromedp actions this package does not wrap.
func (p *Page) Context() context.Context { return p.ctx }

// Do runs actions in the tab; the test fails when one fails or takes longer than Timeout.
func (p *Page) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fatal("%s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression in the page and decodes its JSON value into out.
func (p *Page) Eval(js string, out any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js))
	if err == nil && out != nil {
		err = json.Unmarshal(raw, out)
	}
	if err != nil {
		p.fatal("evaluate %s: %v", js, err)
	}
}

// WaitUntil waits until the JavaScript expression cond is true. It is evaluated now and
// after every change of the page's DOM.
func (p *Page) WaitUntil(what, cond string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout+time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(p.Timeout)))
	if err != nil {
		p.fatal("waiting for %s: %v", what, err)
	}
}

// fatal fails the test with what the page showed, so that a failure explains itself.
func (p *Page) fatal(format string, args ...any) {
	p.t.Helper()
	var shown string
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	if s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`)); err == nil {
		shown = s
	}
	p.t.Fatalf(format+"\n--- the page shows:\n%s\n---", append(args, shown)...)
}

// A Scope is a JavaScript expression that yields the element a search is limited to, or
// undefined while there is none.
type Scope string

// Scopes of the web view.
const (
	Document Scope = `document.documentElement`
	// Channel is the selected channel's messages.
	Channel Scope = `document.getElementById("messages")`
	// Thread is the thread pane's messages.
	Thread Scope = `document.getElementById("thread-messages")`
	// Dialog is an open confirm dialog.
	Dialog Scope = `document.querySelector("dialog[open]") || undefined`
)

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func jsStrings(s []string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Message returns the newest message in scope whose text contains every one of texts,
// waiting until there is one.
func (p *Page) Message(in Scope, texts ...string) Scope {
	p.t.Helper()
	s := Scope(fmt.Sprintf(`(() => { const r = %s; return r ? [...r.querySelectorAll("article.msg")].reverse().find((a) => %s.every((t) => a.textContent.includes(t))) : undefined; })()`,
		in, jsStrings(texts)))
	p.WaitUntil(fmt.Sprintf("a message with %q", texts), "!!"+string(s))
	return s
}

// Has reports whether scope's text contains text now.
func (p *Page) Has(in Scope, text string) bool {
	p.t.Helper()
	var ok bool
	p.Eval(fmt.Sprintf(`(() => { const r = %s; return !!r && r.textContent.includes(%s); })()`, in, jsString(text)), &ok)
	return ok
}

// WaitText waits until scope's text contains text.
func (p *Page) WaitText(in Scope, text string) {
	p.t.Helper()
	p.WaitUntil(fmt.Sprintf("%q", text), fmt.Sprintf(`(() => { const r = %s; return !!r && r.textContent.includes(%s); })()`, in, jsString(text)))
}

// Text returns scope's text as shown (innerText).
func (p *Page) Text(in Scope) string {
	p.t.Helper()
	var s string
	p.Eval(fmt.Sprintf(`(() => { const r = %s; return r ? r.innerText : ""; })()`, in), &s)
	return s
}

// ByRole selects, inside scope, the elements with an ARIA role ("button", "combobox",
// "textbox", "link", "dialog"…) and an accessible name, as Chromium computes them.
func ByRole(in Scope, role, name string) chromedp.QueryOption {
	return chromedp.ByFunc(func(ctx context.Context, t *chromedp.Target, _ *chromedp.Node) ([]cdp.NodeID, error) {
		res, err := cdp.Call(ctx, t, runtime.Evaluate, runtime.EvaluateParams{Expression: string(in)})
		if err != nil {
			return nil, err
		}
		if res.ExceptionDetails != nil {
			return nil, fmt.Errorf("scope %s: %s", in, res.ExceptionDetails.Text)
		}
		if res.Result.ObjectID == "" {
			return []cdp.NodeID{}, nil // not there yet
		}
		defer func() {
			_, _ = cdp.Call(ctx, t, runtime.ReleaseObject, runtime.ReleaseObjectParams{ObjectID: res.Result.ObjectID})
		}()
		root, err := cdp.Call(ctx, t, dom.RequestNode, dom.RequestNodeParams{ObjectID: res.Result.ObjectID})
		if err != nil {
			return nil, err
		}
		found, err := cdp.Call(ctx, t, accessibility.QueryAXTree, accessibility.QueryAXTreeParams{
			NodeID: root.NodeID, Role: role, AccessibleName: name,
		})
		if err != nil {
			return nil, err
		}
		var backend []cdp.BackendNodeID
		for _, n := range found.Nodes {
			if !n.Ignored && n.BackendDOMNodeID != 0 {
				backend = append(backend, n.BackendDOMNodeID)
			}
		}
		if len(backend) == 0 {
			return []cdp.NodeID{}, nil
		}
		pushed, err := cdp.Call(ctx, t, dom.PushNodesByBackendIDsToFrontend, dom.PushNodesByBackendIDsToFrontendParams{BackendNodeIDs: backend})
		if err != nil {
			return nil, err
		}
		return pushed.NodeIDs, nil
	})
}

// Click clicks the element with role and accessible name inside scope, waiting until it is
// there and visible. It first scrolls scope into view, as a person would: the web view lays
// out messages off screen only once they scroll into view.
func (p *Page) Click(in Scope, role, name string) {
	p.t.Helper()
	what := fmt.Sprintf("click the %s %q", role, name)
	p.WaitUntil(what, fmt.Sprintf("!!(%s)", in))
	p.Do(what,
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(%s).scrollIntoView({ block: "nearest" })`, in)),
		chromedp.Click(role+" "+name, ByRole(in, role, name), chromedp.NodeVisible))
}

// OpenThread clicks the reply count under the message msg (see Message), which opens its
// thread beside the channel, and waits until the thread shows.
func (p *Page) OpenThread(msg Scope) {
	p.t.Helper()
	var replies string
	p.WaitUntil("a reply count under the message", fmt.Sprintf(`!!(%s).querySelector(".thread-summary .replies")`, msg))
	p.Eval(fmt.Sprintf(`(%s).querySelector(".thread-summary .replies").textContent`, msg), &replies)
	// Open: the thread pane shows this message's thread.
	open := fmt.Sprintf(`!document.getElementById("thread").hidden &&
		!!document.querySelector('#thread-messages article[data-ts="' + (%s).dataset.ts + '"]')`, msg)
	// A click lands where the button was a moment before; when the channel scrolls meanwhile
	// (a new message, the list following the bottom), it misses, and a person clicks again.
	for range 3 {
		p.Click(msg, "button", replies)
		if p.within(5*time.Second, open) {
			return
		}
	}
	p.WaitUntil("the thread to open", open)
}

// within reports whether the JavaScript expression cond becomes true within d.
func (p *Page) within(d time.Duration, cond string) bool {
	ctx, cancel := context.WithTimeout(p.ctx, d+time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(d)))
	return err == nil
}

// Count returns how many elements inside scope have role and accessible name now.
func (p *Page) Count(in Scope, role, name string) int {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout)
	defer cancel()
	ids, err := chromedp.Run(ctx, chromedp.QueryNodeIDs(role+" "+name, ByRole(in, role, name), chromedp.AtLeast(0)))
	if err != nil {
		p.fatal("count the %s %q: %v", role, name, err)
	}
	return len(ids)
}

// ActAs picks who the web view acts as, by name, in the combobox "Acting as".
func (p *Page) ActAs(name string) {
	p.t.Helper()
	p.Do("act as "+name,
		chromedp.Focus("Acting as", ByRole(Document, "combobox", "Acting as")),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
			const s = document.activeElement;
			const o = [...s.options].find((o) => o.text === %s);
			if (!o) throw new Error("nobody named " + %s + " in the Acting as list");
			s.value = o.value;
			s.dispatchEvent(new Event("change", { bubbles: true }));
		})()`, jsString(name), jsString(name))))
	p.WaitUntil("the page to act as "+name, fmt.Sprintf(
		`document.activeElement.selectedOptions[0].text === %s && document.body.dataset.ready === "true"`, jsString(name)))
}

// Send enters text into the composer (the textbox "Message") and presses Enter, as a person
// sends a message or a slash command. The text goes in at once, as when pasted, rather than
// key by key: that costs one round trip to the browser instead of one per character.
func (p *Page) Send(text string) {
	p.t.Helper()
	p.Do("send "+text,
		chromedp.Focus("Message", ByRole(Document, "textbox", "Message")),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: text})
			return err
		}),
		pressEnter(),
	)
}

// pressEnter presses Enter on the focused element, without the character event that
// SendKeys adds: the composer sends on keydown, as Slack's does.
func pressEnter() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Screenshot writes a PNG of the window to path, with the mouse moved out of the way so that
// no message shows as hovered.
func (p *Page) Screenshot(path string) {
	p.t.Helper()
	p.Do("move the mouse away", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 1, 1))
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.fatal("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}
