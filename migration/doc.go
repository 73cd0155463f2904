// Package migration holds cutoverbot's domain: source servers and their replication and
// lifecycle states, launch jobs and their log events, the launch rules (pre-flight checks),
// the resolver from what a person types to servers, the plain-English labels the console
// uses, and the errors callers branch on. It holds no SDK types: package awsmgn is the adapter
// that talks to AWS Application Migration Service (MGN) and EC2 through aws-sdk-go-v2 and
// translates their shapes into these types.
//
// The package imports none of cutoverbot's other packages: it knows no chat, no database and
// no AWS SDK.
package migration
