package slackemu

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file models how a Slack client displays text: what a person reads, with formatting
// markers consumed where they format. It errs on the side of formatting: a marker formats
// wherever Slack could let it, so that text which shows literally here shows literally in
// Slack too. Its rules, from Slack's formatting reference and from what Block Kit libraries
// found out:
//   - <…> is a token: a mention (<@U123>, <#C123|name>, <!here>, <!subteam^S1|@ops>), a link
//     (<https://…|label>) or a date (<!date^…^{format}|fallback>); a date whose format Slack
//     cannot use shows its fallback verbatim, with no formatting and no entities decoded in it;
//   - &amp; &lt; &gt; show as & < >, and only these three;
//   - *bold*, _italic_, ~strike~ and `code` format when the opening marker does not follow a
//     letter or digit and is followed by a non-space, and the closing one follows a non-space
//     and is not followed by a letter or digit, both on one line; code shows its content as it
//     is, the others may nest;
//   - &gt; at the start of a line makes it a quote.
//
// Emoji shortcodes (:fire:) and the automatic linking of bare URLs and #channel names are not
// modelled.

// atom is one displayed character, or a whole token.
type atom struct {
	r     rune
	token string // the token's display text, when the atom is a token
}

func (a atom) isToken() bool { return a.token != "" }

// wordChar reports whether a is a letter or digit, next to which a marker cannot format.
func (a atom) wordChar() bool {
	return !a.isToken() && (unicode.IsLetter(a.r) || unicode.IsDigit(a.r))
}

func (a atom) space() bool { return !a.isToken() && unicode.IsSpace(a.r) }

// leadingToken is mrkdwnToken at the start of a text.
var leadingToken = regexp.MustCompile(`^` + mrkdwnToken.String())

// Display returns what a person reads in a mrkdwn text, as Slack's client draws it (see the
// rules above): tokens as their text (mentions by ID, "@here", links by their label, dates
// by their fallback), entities decoded, and the markers of bold, italic, strikethrough, code
// and quotes left out where they format.
func Display(mrkdwn string) string {
	var atoms []atom
	for len(mrkdwn) > 0 {
		if loc := leadingToken.FindStringSubmatchIndex(mrkdwn); loc != nil {
			target := mrkdwn[loc[2]:loc[3]]
			label := ""
			if loc[4] >= 0 {
				label = mrkdwn[loc[4]:loc[5]]
			}
			if text := tokenText(target, label, nil); text != "" {
				atoms = append(atoms, atom{token: text})
			}
			mrkdwn = mrkdwn[loc[1]:]
			continue
		}
		var r rune
		var size int
		switch {
		case strings.HasPrefix(mrkdwn, "&amp;"):
			r, size = '&', len("&amp;")
		case strings.HasPrefix(mrkdwn, "&lt;"):
			r, size = '<', len("&lt;")
		case strings.HasPrefix(mrkdwn, "&gt;"):
			r, size = '>', len("&gt;")
			if len(atoms) == 0 || atoms[len(atoms)-1].r == '\n' {
				mrkdwn = strings.TrimPrefix(mrkdwn[size:], " ")
				continue // a quote: a bar, not a ">"
			}
		default:
			r, size = utf8.DecodeRuneInString(mrkdwn)
		}
		atoms = append(atoms, atom{r: r})
		mrkdwn = mrkdwn[size:]
	}
	var b strings.Builder
	displayAtoms(&b, atoms)
	return b.String()
}

// displayAtoms writes atoms as displayed, consuming the markers that format.
func displayAtoms(b *strings.Builder, atoms []atom) {
	closers := closers(atoms)
	for i := 0; i < len(atoms); i++ {
		a := atoms[i]
		if k := markerKind(a); k >= 0 && (i == 0 || !atoms[i-1].wordChar()) && i+2 < len(atoms) && !atoms[i+1].space() {
			if j := closers[k][i+2]; j > 0 {
				if a.r == '`' {
					for _, c := range atoms[i+1 : j] {
						writeAtom(b, c)
					}
				} else {
					displayAtoms(b, atoms[i+1:j])
				}
				i = j
				continue
			}
		}
		writeAtom(b, a)
	}
}

const markers = "*_~`"

// markerKind is the index of a's formatting marker in markers, -1 when it is none.
func markerKind(a atom) int {
	if a.isToken() {
		return -1
	}
	return strings.IndexRune(markers, a.r)
}

// closers gives, per marker kind and position i, the first marker at or after i that can
// close one of its kind on the same line, or -1: a marker that follows a non-space and is
// not followed by a letter or digit. One pass from the end keeps displaying linear.
func closers(atoms []atom) [len(markers)][]int {
	var next [len(markers)][]int
	for k := range next {
		next[k] = make([]int, len(atoms)+1)
		next[k][len(atoms)] = -1
	}
	for j := len(atoms) - 1; j >= 0; j-- {
		for k := range next {
			next[k][j] = next[k][j+1]
		}
		switch a := atoms[j]; {
		case a.r == '\n' && !a.isToken():
			for k := range next {
				next[k][j] = -1
			}
		case markerKind(a) >= 0 && j > 0 && !atoms[j-1].space() && (j+1 == len(atoms) || !atoms[j+1].wordChar()):
			next[markerKind(a)][j] = j
		}
	}
	return next
}

func writeAtom(b *strings.Builder, a atom) {
	if a.isToken() {
		b.WriteString(a.token)
		return
	}
	b.WriteRune(a.r)
}

// tokenText is how a Slack client shows the token <target|label>: user mentions as "@name",
// channels as "#name" (names keyed by target, "@U…" and "#C…"; the ID when unknown), special
// mentions as "@here" or their label, dates by their fallback, links by their label.
func tokenText(target, label string, names map[string]string) string {
	switch {
	case strings.HasPrefix(target, "@"):
		if name, ok := names[target]; ok {
			return "@" + name
		}
		return target
	case strings.HasPrefix(target, "#"):
		if name := names[target]; name != "" {
			return "#" + name // the channel's name now, as the client shows it
		}
		if label != "" {
			return "#" + label
		}
		return target
	case strings.HasPrefix(target, "!"):
		if label != "" {
			return label
		}
		return "@" + strings.TrimPrefix(target, "!")
	case label != "":
		return label
	}
	return target
}

// DisplayPlain returns what a person reads in a plain_text object: its text with the three
// entities decoded, nothing formatted.
func DisplayPlain(text string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(text)
}

// Displayed returns what a person reads in each text of the message, as Display and
// DisplayPlain draw it: the notification text, then every text object of its blocks
// (headers, sections and their fields, context elements, buttons and their confirmation
// dialogs), each by the rules of its type.
func (m Message) Displayed() []string {
	out := []string{Display(m.Text)}
	add := func(t *textObject) {
		switch {
		case t == nil || t.Text == "":
		case t.Type == "plain_text":
			out = append(out, DisplayPlain(t.Text))
		default:
			out = append(out, Display(t.Text))
		}
	}
	for _, raw := range m.Blocks {
		var b block
		if json.Unmarshal(raw, &b) != nil {
			continue
		}
		add(b.Text)
		for i := range b.Fields {
			add(&b.Fields[i])
		}
		for _, e := range b.elementsWithAccessory() {
			add(&e.Text) // a context element's own type, or a button's plain_text
			if c := e.Confirm; c != nil {
				add(&c.Title)
				add(&c.Text)
				add(&c.Confirm)
				add(&c.Deny)
			}
		}
	}
	return out
}

// Literal is a text that must show exactly as it is, and a piece of it found nowhere else,
// such as its letters: where the text's own markers were taken for formatting, or it was
// escaped twice or for the other kind of text, the piece shows without the rest of it.
type Literal struct{ Text, Piece string }

// Garbled lists the texts of msgs, as Displayed draws them, that show one of literals other
// than exactly, or that show what a message should never show a person: a date token as
// such, an entity (&amp; &lt; &gt;), or a mention of everyone (<!channel>, <!here>,
// <!everyone>, which notify the whole channel).
func Garbled(msgs []Message, literals ...Literal) []string {
	var out []string
	for _, m := range msgs {
		raw := m.Text
		for _, b := range m.Blocks {
			raw += string(b)
		}
		for _, everyone := range []string{"<!channel", "<!here", "<!everyone"} {
			if strings.Contains(raw, everyone) {
				out = append(out, "a mention of everyone in: "+Display(m.Text))
			}
		}
		for _, text := range m.Displayed() {
			for _, l := range literals {
				if strings.Count(text, l.Piece) != strings.Count(text, l.Text)*strings.Count(l.Text, l.Piece) {
					out = append(out, fmt.Sprintf("%q not shown literally in: %s", l.Text, text))
				}
			}
			for _, bad := range []string{"<!date", "&amp;", "&lt;", "&gt;"} {
				if strings.Contains(text, bad) {
					out = append(out, fmt.Sprintf("%q shown in: %s", bad, text))
				}
			}
		}
	}
	return out
}
