package slackemu

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// TestMetadataStoredAndShownOnRequest posts with metadata through slack-go: it is kept with
// the message and returned by conversations.history and conversations.replies only with
// include_all_metadata; chat.update without metadata keeps it, with metadata replaces it.
func TestMetadataStoredAndShownOnRequest(t *testing.T) {
	s := startServer(t, Options{PostInterval: -1})
	api := apiClient(s)
	ctx := t.Context()
	md := slack.SlackMetadata{EventType: "job_parent", EventPayload: map[string]any{"job_id": "mgnjob-1", "n": 3}}
	_, parent, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("parent", false), slack.MsgOptionMetadata(md))
	if err != nil {
		t.Fatal(err)
	}
	reply := slack.SlackMetadata{EventType: "job_events", EventPayload: map[string]any{"first": 1, "last": 2}}
	if _, _, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("reply", false),
		slack.MsgOptionTS(parent), slack.MsgOptionMetadata(reply)); err != nil {
		t.Fatal(err)
	}

	for _, with := range []bool{false, true} {
		hist, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: testChannel, IncludeAllMetadata: with})
		if err != nil {
			t.Fatal(err)
		}
		if len(hist.Messages) != 1 {
			t.Fatalf("history: got %d messages, want the parent only", len(hist.Messages))
		}
		got := hist.Messages[0].Metadata
		if with && (got.EventType != "job_parent" || got.EventPayload["job_id"] != "mgnjob-1" || got.EventPayload["n"] != 3.0) {
			t.Errorf("history with include_all_metadata: got %+v, want %+v", got, md)
		}
		if !with && got.EventType != "" {
			t.Errorf("history without include_all_metadata: got metadata %+v, want none", got)
		}
		if m := hist.Messages[0]; m.ReplyCount != 1 || m.ThreadTimestamp != parent {
			t.Errorf("parent in history: reply_count %d thread_ts %q, want 1 and %s", m.ReplyCount, m.ThreadTimestamp, parent)
		}
		msgs, _, _, err := api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: testChannel, Timestamp: parent, IncludeAllMetadata: with})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 2 {
			t.Fatalf("replies: got %d messages, want parent and reply", len(msgs))
		}
		if got := msgs[1].Metadata.EventType; (got == "job_events") != with {
			t.Errorf("reply metadata with include_all_metadata=%v: got event type %q", with, got)
		}
	}

	if _, _, _, err := api.UpdateMessageContext(ctx, testChannel, parent, slack.MsgOptionText("edited", false)); err != nil {
		t.Fatal(err)
	}
	if m := s.Messages(testChannel)[0]; m.Metadata == nil || m.Metadata.EventType != "job_parent" {
		t.Errorf("after chat.update without metadata: got %+v, want the metadata kept", m.Metadata)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, testChannel, parent, slack.MsgOptionText("edited", false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "job_final", EventPayload: map[string]any{}})); err != nil {
		t.Fatal(err)
	}
	if m := s.Messages(testChannel)[0]; m.Metadata == nil || m.Metadata.EventType != "job_final" {
		t.Errorf("after chat.update with metadata: got %+v, want it replaced", m.Metadata)
	}
}

func TestMetadataRefusedWhenMalformed(t *testing.T) {
	s := startServer(t, Options{PostInterval: -1})
	tests := []struct{ name, metadata string }{
		{"not json", "{"},
		{"no event type", `{"event_payload":{"a":1}}`},
		{"empty event type", `{"event_type":"","event_payload":{}}`},
		{"payload not an object", `{"event_type":"x","event_payload":[1]}`},
		{"too large", `{"event_type":"x","event_payload":{"a":"` + strings.Repeat("y", maxMetadata) + `"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := apiClient(s).PostMessageContext(t.Context(), testChannel, slack.MsgOptionText("hi", false),
				withArg(s, "metadata", tt.metadata))
			if se, ok := errors.AsType[slack.SlackErrorResponse](err); !ok || se.Err != "invalid_metadata_format" {
				t.Errorf("got %v, want invalid_metadata_format", err)
			}
		})
	}
	if n := len(s.Messages(testChannel)); n != 0 {
		t.Errorf("got %d messages posted, want 0", n)
	}
}

// withArg sets a raw chat.postMessage argument, for values slack-go would encode correctly.
func withArg(s *Server, name, value string) slack.MsgOption {
	return slack.UnsafeMsgOptionEndpoint(s.URL()+"chat.postMessage", func(v url.Values) { v.Set(name, value) })
}

// TestHistoryPagesAndWindow reads a channel of 25 messages (and replies, one of them
// broadcast) page by page with slack-go, newest first, within oldest/latest.
func TestHistoryPagesAndWindow(t *testing.T) {
	clk := newClock()
	s := startServer(t, Options{PostInterval: -1, Now: clk.Now})
	api := apiClient(s)
	ctx := t.Context()
	var tss []string
	for i := range 25 {
		_, ts, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText(fmt.Sprintf("m%02d", i), false))
		if err != nil {
			t.Fatal(err)
		}
		tss = append(tss, ts)
		clk.Add(time.Second)
	}
	if _, _, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("quiet reply", false), slack.MsgOptionTS(tss[0])); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("loud reply", false), slack.MsgOptionTS(tss[0]), slack.MsgOptionBroadcast()); err != nil {
		t.Fatal(err)
	}

	read := func(p slack.GetConversationHistoryParameters) (texts []string, pages int) {
		t.Helper()
		p.ChannelID = testChannel
		for {
			res, err := api.GetConversationHistoryContext(ctx, &p)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, m := range res.Messages {
				texts = append(texts, m.Text)
			}
			if !res.HasMore {
				if res.ResponseMetaData.NextCursor != "" {
					t.Errorf("last page has next_cursor %q, want none", res.ResponseMetaData.NextCursor)
				}
				return texts, pages
			}
			p.Cursor = res.ResponseMetaData.NextCursor
		}
	}
	all, pages := read(slack.GetConversationHistoryParameters{Limit: 10})
	if pages != 3 || len(all) != 26 || all[0] != "loud reply" || all[1] != "m24" || all[25] != "m00" {
		t.Errorf("whole history: %d pages %q, want 3 pages, the broadcast reply then m24 … m00", pages, all)
	}
	if slices.Contains(all, "quiet reply") {
		t.Error("history shows a reply that was not broadcast")
	}
	got, _ := read(slack.GetConversationHistoryParameters{Oldest: tss[20], Latest: tss[23]})
	if want := []string{"m22", "m21"}; !slices.Equal(got, want) {
		t.Errorf("oldest m20, latest m23, exclusive: got %q, want %q", got, want)
	}
	got, _ = read(slack.GetConversationHistoryParameters{Oldest: tss[20], Latest: tss[23], Inclusive: true})
	if want := []string{"m23", "m22", "m21", "m20"}; !slices.Equal(got, want) {
		t.Errorf("inclusive: got %q, want %q", got, want)
	}

	for _, tt := range []struct {
		name string
		p    slack.GetConversationHistoryParameters
		want string
	}{
		{"unknown channel", slack.GetConversationHistoryParameters{ChannelID: "C0NOWHERE"}, "channel_not_found"},
		{"bad cursor", slack.GetConversationHistoryParameters{ChannelID: testChannel, Cursor: "bm9wZQ=="}, "invalid_cursor"},
		{"bad oldest", slack.GetConversationHistoryParameters{ChannelID: testChannel, Oldest: "yesterday"}, "invalid_ts_oldest"},
	} {
		_, err := api.GetConversationHistoryContext(ctx, &tt.p)
		if se, ok := errors.AsType[slack.SlackErrorResponse](err); !ok || se.Err != tt.want {
			t.Errorf("%s: got %v, want %s", tt.name, err, tt.want)
		}
	}
}

// TestRepliesPages reads a thread of 30 replies in pages of 7: the parent first (on the first
// page), then every reply once, in order; ts may name a reply.
func TestRepliesPages(t *testing.T) {
	s := startServer(t, Options{PostInterval: -1})
	api := apiClient(s)
	ctx := t.Context()
	_, parent, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("parent", false))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"parent"}
	var lastReply string
	for i := range 30 {
		text := fmt.Sprintf("r%02d", i)
		_, ts, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText(text, false), slack.MsgOptionTS(parent))
		if err != nil {
			t.Fatal(err)
		}
		want, lastReply = append(want, text), ts
	}
	for _, ts := range []string{parent, lastReply} {
		var got []string
		params := slack.GetConversationRepliesParameters{ChannelID: testChannel, Timestamp: ts, Limit: 7}
		pages := 0
		for {
			msgs, more, next, err := api.GetConversationRepliesContext(ctx, &params)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, m := range msgs {
				got = append(got, m.Text)
				if m.Text != "parent" && m.ThreadTimestamp != parent {
					t.Errorf("reply %q has thread_ts %q, want %s", m.Text, m.ThreadTimestamp, parent)
				}
			}
			if !more {
				break
			}
			params.Cursor = next
		}
		if !slices.Equal(got, want) || pages != 5 {
			t.Errorf("thread read from %s: %d pages %q, want 5 pages %q", ts, pages, got, want)
		}
	}
	_, _, _, err = api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: testChannel, Timestamp: "1.000001"})
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); !ok || se.Err != "thread_not_found" {
		t.Errorf("unknown ts: got %v, want thread_not_found", err)
	}
	_, _, _, err = api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: testChannel, Timestamp: parent, Cursor: "%%%"})
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); !ok || se.Err != "invalid_cursor" {
		t.Errorf("bad cursor: got %v, want invalid_cursor", err)
	}
}

// TestReplyFaults: a lost reply posts the message and answers 503; a held reply posts the
// message and answers once the client gives up.
func TestReplyFaults(t *testing.T) {
	s := startServer(t, Options{PostInterval: -1})
	api := apiClient(s)
	s.LoseReplies("chat.postMessage", 1)
	_, _, err := api.PostMessageContext(t.Context(), testChannel, slack.MsgOptionText("lost", false))
	if se, ok := errors.AsType[slack.StatusCodeError](err); !ok || se.Code != http.StatusServiceUnavailable {
		t.Errorf("lost reply: got %v, want HTTP 503", err)
	}
	s.HoldReplies("chat.postMessage", 1, time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("held", false)); err == nil {
		t.Error("held reply: got an answer, want the client to time out")
	}
	if _, _, err := api.PostMessageContext(t.Context(), testChannel, slack.MsgOptionText("normal", false)); err != nil {
		t.Errorf("after the faults: %v", err)
	}
	var got []string
	for _, m := range s.Messages(testChannel) {
		got = append(got, m.Text)
	}
	if want := []string{"lost", "held", "normal"}; !slices.Equal(got, want) {
		t.Errorf("channel: got %q, want %q (each call took effect once)", got, want)
	}
}
