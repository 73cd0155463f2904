package slackemu

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is a message as the workspace holds it.
type Message struct {
	Channel string
	TS      string
	// ThreadTS is the parent's ts for a thread reply, "" for a top-level
	// message.
	ThreadTS string
	// User is the author: BotUserID for Web API posts, the invoking user for
	// in_channel response_url posts.
	User   string
	Text   string
	Blocks []json.RawMessage
	// Broadcast marks a thread reply also shown in the channel.
	Broadcast bool
	// Ephemeral marks a message only its recipient (Recipient) sees.
	Ephemeral bool
	Recipient string
	Deleted   bool
	// Edits counts content changes (chat.update, replace_original).
	Edits  int
	Posted time.Time
	// Metadata is the message metadata the app attached; nil for none.
	Metadata *Metadata
}

func (m *Message) clone() Message {
	c := *m
	c.Blocks = slices.Clone(m.Blocks)
	c.Metadata = m.Metadata.clone()
	return c
}

// Button is an interactive button found in a message's blocks.
type Button struct {
	BlockID  string
	ActionID string
	Text     string
	Value    string
	Style    string
	URL      string
	// Confirm reports a confirm dialog; the Slack client shows it before the
	// click is sent, so Click models an accepted dialog.
	Confirm bool
}

// Buttons returns the buttons in the message's actions blocks and section
// accessories, in order.
func (m Message) Buttons() []Button {
	var out []Button
	for _, raw := range m.Blocks {
		var b block
		if json.Unmarshal(raw, &b) != nil {
			continue
		}
		for _, e := range b.elementsWithAccessory() {
			if e.Type != "button" {
				continue
			}
			out = append(out, Button{
				BlockID: b.BlockID, ActionID: e.ActionID, Text: e.Text.Text,
				Value: e.Value, Style: e.Style, URL: e.URL, Confirm: e.Confirm != nil,
			})
		}
	}
	return out
}

// PlainText renders the message roughly as a person reads it: header,
// section and context texts, fields, and buttons as "[Label]", one block per
// line. A message without blocks renders as its text.
func (m Message) PlainText() string {
	if len(m.Blocks) == 0 {
		return m.Text
	}
	var lines []string
	for _, raw := range m.Blocks {
		var b block
		if json.Unmarshal(raw, &b) != nil {
			continue
		}
		switch b.Type {
		case "header":
			lines = append(lines, "*"+b.Text.Text+"*")
		case "section":
			if b.Text != nil {
				lines = append(lines, b.Text.Text)
			}
			for _, f := range b.Fields {
				lines = append(lines, f.Text)
			}
			if b.Accessory != nil && b.Accessory.Type == "button" {
				lines = append(lines, "["+b.Accessory.Text.Text+"]")
			}
		case "context":
			var parts []string
			for _, e := range b.Elements {
				if e.Text.Text != "" {
					parts = append(parts, e.Text.Text)
				}
			}
			lines = append(lines, strings.Join(parts, " "))
		case "actions":
			var parts []string
			for _, e := range b.Elements {
				if e.Type == "button" {
					parts = append(parts, "["+e.Text.Text+"]")
				}
			}
			lines = append(lines, strings.Join(parts, " "))
		case "divider":
			lines = append(lines, "----")
		case "markdown":
			lines = append(lines, b.MarkdownText)
		}
	}
	return strings.Join(lines, "\n")
}

// block is the subset of Block Kit the emulator inspects.
type block struct {
	Type         string      `json:"type"`
	BlockID      string      `json:"block_id"`
	Text         *textObject `json:"text"`
	Fields       []textObject
	Accessory    *element  `json:"accessory"`
	Elements     []element `json:"elements"`
	MarkdownText string    `json:"-"`
}

func (b *block) UnmarshalJSON(data []byte) error {
	type plain block
	var aux struct {
		plain
		Text     json.RawMessage `json:"text"`
		Fields   []textObject    `json:"fields"`
		Elements json.RawMessage `json:"elements"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*b = block(aux.plain)
	b.Fields = aux.Fields
	if len(aux.Text) > 0 && aux.Text[0] == '"' { // markdown block: "text" is a string
		if err := json.Unmarshal(aux.Text, &b.MarkdownText); err != nil {
			return err
		}
	} else if len(aux.Text) > 0 && string(aux.Text) != "null" {
		b.Text = new(textObject)
		if err := json.Unmarshal(aux.Text, b.Text); err != nil {
			return err
		}
	}
	if b.Type != "rich_text" && len(aux.Elements) > 0 {
		if err := json.Unmarshal(aux.Elements, &b.Elements); err != nil {
			return err
		}
	}
	return nil
}

func (b *block) elementsWithAccessory() []element {
	out := slices.Clone(b.Elements)
	if b.Accessory != nil {
		out = append(out, *b.Accessory)
	}
	return out
}

type textObject struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// element is a block element or a context element (image, text object).
type element struct {
	Type     string         `json:"type"`
	ActionID string         `json:"action_id"`
	Text     textObject     `json:"text"`
	Value    string         `json:"value"`
	Style    string         `json:"style"`
	URL      string         `json:"url"`
	Confirm  *confirmObject `json:"confirm"`
}

// UnmarshalJSON accepts both shapes of "text": an object (buttons) and a
// string (context mrkdwn/plain_text elements, which are text objects).
func (e *element) UnmarshalJSON(data []byte) error {
	type plain element
	var aux struct {
		plain
		Text json.RawMessage `json:"text"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*e = element(aux.plain)
	if len(aux.Text) == 0 || string(aux.Text) == "null" {
		return nil
	}
	if aux.Text[0] == '"' {
		e.Text.Type = e.Type
		return json.Unmarshal(aux.Text, &e.Text.Text)
	}
	return json.Unmarshal(aux.Text, &e.Text)
}

type confirmObject struct {
	Title   textObject `json:"title"`
	Text    textObject `json:"text"`
	Confirm textObject `json:"confirm"`
	Deny    textObject `json:"deny"`
}

// Slack's message limits.
const (
	maxBlocks       = 50
	maxSectionText  = 3000
	maxFields       = 10
	maxFieldText    = 2000
	maxHeaderText   = 150
	maxButtonText   = 75
	maxButtonValue  = 2000
	maxURL          = 3000
	maxActions      = 25
	maxContext      = 10
	maxID           = 255
	maxConfirmTitle = 100
	maxConfirmText  = 300
	maxConfirmBtn   = 30
	maxMessageText  = 40000
	maxMarkdown     = 12000
)

var knownBlocks = map[string]bool{
	"section": true, "header": true, "context": true, "actions": true, "divider": true,
	"image": true, "rich_text": true, "markdown": true, "input": true, "file": true, "video": true,
}

// parseBlocks decodes the "blocks" argument. It returns the Slack error code
// on failure: invalid_blocks_format for malformed JSON, invalid_blocks for a
// limit or shape violation.
func parseBlocks(arg string) ([]json.RawMessage, string) {
	if strings.TrimSpace(arg) == "" {
		return nil, ""
	}
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(arg), &raws); err != nil {
		return nil, "invalid_blocks_format"
	}
	if len(raws) > maxBlocks {
		return nil, "invalid_blocks"
	}
	blockIDs := map[string]bool{}
	for _, raw := range raws {
		var b block
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, "invalid_blocks_format"
		}
		if !validBlock(&b) {
			return nil, "invalid_blocks"
		}
		if b.BlockID != "" {
			if blockIDs[b.BlockID] {
				return nil, "invalid_blocks" // duplicate block_id
			}
			blockIDs[b.BlockID] = true
		}
	}
	return raws, ""
}

func runes(s string) int { return utf8.RuneCountInString(s) }

func validBlock(b *block) bool {
	if !knownBlocks[b.Type] || runes(b.BlockID) > maxID {
		return false
	}
	switch b.Type {
	case "section":
		if b.Text == nil && len(b.Fields) == 0 {
			return false
		}
		if b.Text != nil && (b.Text.Text == "" || runes(b.Text.Text) > maxSectionText) {
			return false
		}
		if len(b.Fields) > maxFields {
			return false
		}
		for _, f := range b.Fields {
			if f.Text == "" || runes(f.Text) > maxFieldText {
				return false
			}
		}
		if b.Accessory != nil && !validElement(b.Accessory) {
			return false
		}
	case "header":
		if b.Text == nil || b.Text.Type != "plain_text" || b.Text.Text == "" || runes(b.Text.Text) > maxHeaderText {
			return false
		}
	case "context":
		if len(b.Elements) == 0 || len(b.Elements) > maxContext {
			return false
		}
	case "actions":
		if len(b.Elements) == 0 || len(b.Elements) > maxActions {
			return false
		}
		ids := map[string]bool{}
		for i := range b.Elements {
			e := &b.Elements[i]
			if !validElement(e) {
				return false
			}
			if e.ActionID != "" {
				if ids[e.ActionID] {
					return false // action_id must be unique within the block
				}
				ids[e.ActionID] = true
			}
		}
	case "markdown":
		if b.MarkdownText == "" || runes(b.MarkdownText) > maxMarkdown {
			return false
		}
	}
	return true
}

func validElement(e *element) bool {
	if runes(e.ActionID) > maxID {
		return false
	}
	if e.Type != "button" {
		return true
	}
	if e.Text.Type != "plain_text" || e.Text.Text == "" || runes(e.Text.Text) > maxButtonText {
		return false
	}
	if runes(e.Value) > maxButtonValue || runes(e.URL) > maxURL {
		return false
	}
	if e.Style != "" && e.Style != "primary" && e.Style != "danger" {
		return false
	}
	if c := e.Confirm; c != nil {
		if c.Title.Text == "" || runes(c.Title.Text) > maxConfirmTitle ||
			c.Text.Text == "" || runes(c.Text.Text) > maxConfirmText ||
			c.Confirm.Text == "" || runes(c.Confirm.Text) > maxConfirmBtn ||
			c.Deny.Text == "" || runes(c.Deny.Text) > maxConfirmBtn {
			return false
		}
	}
	return true
}

// checkContent validates a message's text and blocks as chat.postMessage
// does, returning the parsed blocks or a Slack error code.
func checkContent(text, blocksArg string) ([]json.RawMessage, string) {
	blocks, code := parseBlocks(blocksArg)
	if code != "" {
		return nil, code
	}
	if runes(text) > maxMessageText {
		return nil, "msg_too_long"
	}
	if text == "" && len(blocks) == 0 {
		return nil, "no_text"
	}
	return blocks, ""
}
