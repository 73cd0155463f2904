package migration

// Tags cutoverbot puts on the MGN jobs it starts, so that AWS's own records (DescribeJobs,
// CloudTrail) say who asked for a launch and who approved it.
const (
	TagRequestedBy  = "cutoverbot:requested-by" // Slack user ID of the requester
	TagApprovedBy   = "cutoverbot:approved-by"  // Slack user ID of the approver (cutovers)
	TagRequest      = "cutoverbot:request"      // the bot's request ID
	TagConfirmation = "cutoverbot:confirmation" // the confirmation card's ID (cutovers)
	TagBatch        = "cutoverbot:batch"        // a batch of a wave's or application's launch: "<launch ID>/<batch number>"
)
