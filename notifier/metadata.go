package notifier

import (
	"encoding/json"
	"time"

	"github.com/slack-go/slack"
)

// Event types of the Slack message metadata on everything the notifier posts. Metadata is
// invisible to people; the notifier reads it back (conversations.replies and .history with
// include_all_metadata) to see what a thread or the channel already shows, so that nothing
// is posted twice after a crash, a lost answer from Slack, or a takeover by another replica.
// The payloads are a few dozen bytes.
const (
	// eventJobParent marks a job thread's parent. Payload {"job_id"}.
	eventJobParent = "cutoverbot_job_parent"
	// eventJobEvents marks a thread reply showing job log items. Payload {"job_id",
	// "first", "last"}: the numbers of the first and last log item it shows, counting from 1.
	eventJobEvents = "cutoverbot_job_events"
	// eventJobFinal marks a job's final report. Payload {"job_id"}.
	eventJobFinal = "cutoverbot_job_final"
	// eventJobVerified marks the report of a job's post-launch actions. Payload {"job_id"}.
	eventJobVerified = "cutoverbot_job_verified"
	// eventGroupParent marks the thread parent of a wave's or application's launch. Payload
	// {"group_id"}.
	eventGroupParent = "cutoverbot_group_parent"
	// eventGroupFinal marks a part of a group launch's final report. Payload {"group_id",
	// "part"}: its number, from 1; part 1 is broadcast to the channel.
	eventGroupFinal = "cutoverbot_group_final"
	// eventReminder marks a weekly reminder. Payload {"firing"}: its scheduled time, RFC 3339
	// in UTC.
	eventReminder = "cutoverbot_reminder"
)

// slackClockSkew is how far Slack's clock, which stamps messages, may be from ours: a
// search of the channel's history for something posted after a time starts this much
// earlier.
const slackClockSkew = 5 * time.Minute

func parentMetadata(jobID string) slack.SlackMetadata {
	return slack.SlackMetadata{EventType: eventJobParent, EventPayload: map[string]any{"job_id": jobID}}
}

func eventsMetadata(jobID string, first, last int) slack.SlackMetadata {
	return slack.SlackMetadata{EventType: eventJobEvents, EventPayload: map[string]any{"job_id": jobID, "first": first, "last": last}}
}

func finalMetadata(jobID string) slack.SlackMetadata {
	return slack.SlackMetadata{EventType: eventJobFinal, EventPayload: map[string]any{"job_id": jobID}}
}

func verifiedMetadata(jobID string) slack.SlackMetadata {
	return slack.SlackMetadata{EventType: eventJobVerified, EventPayload: map[string]any{"job_id": jobID}}
}

func groupParentMetadata(groupID string) slack.SlackMetadata {
	return slack.SlackMetadata{EventType: eventGroupParent, EventPayload: map[string]any{"group_id": groupID}}
}

func groupFinalMetadata(groupID string, part int) slack.SlackMetadata {
	return slack.SlackMetadata{EventType: eventGroupFinal, EventPayload: map[string]any{"group_id": groupID, "part": part}}
}

func reminderMetadata(firing time.Time) slack.SlackMetadata {
	return slack.SlackMetadata{EventType: eventReminder, EventPayload: map[string]any{"firing": firing.UTC().Format(time.RFC3339)}}
}

// threadShows is what a job's thread holds, as its messages' metadata say.
type threadShows struct {
	posted   int  // the last log item a reply shows; 0 when none does
	final    bool // the final report is there
	verified bool // the report of the post-launch actions is there
}

// readThread reads the metadata of a thread's messages (conversations.replies) for jobID.
func readThread(msgs []slack.Message, jobID string) threadShows {
	var th threadShows
	for _, m := range msgs {
		md := m.Metadata
		if md.EventPayload["job_id"] != jobID {
			continue
		}
		switch md.EventType {
		case eventJobEvents:
			if last, ok := payloadInt(md.EventPayload, "last"); ok {
				th.posted = max(th.posted, last)
			}
		case eventJobFinal:
			th.final = true
		case eventJobVerified:
			th.verified = true
		}
	}
	return th
}

// payloadInt reads a number from a metadata payload: float64 as JSON decodes it, or int as
// it was built.
func payloadInt(p map[string]any, key string) (int, bool) {
	switch v := p[key].(type) {
	case float64:
		return int(v), v == float64(int(v))
	case int:
		return v, true
	case json.Number:
		n, err := v.Int64()
		return int(n), err == nil
	}
	return 0, false
}

// groupParts returns the parts of a group launch's final report that a thread holds.
func groupParts(msgs []slack.Message, groupID string) map[int]bool {
	parts := map[int]bool{}
	for _, m := range msgs {
		md := m.Metadata
		if md.EventType != eventGroupFinal || md.EventPayload["group_id"] != groupID {
			continue
		}
		if part, ok := payloadInt(md.EventPayload, "part"); ok {
			parts[part] = true
		}
	}
	return parts
}
