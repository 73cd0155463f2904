// Package migration holds cutoverbot's domain: source servers and their replication and
// lifecycle states, launch jobs and their log events, the launch rules (pre-flight checks),
// the resolver from what a person types to servers, and the plain-English labels the console
// uses. The files server.go, job.go, labels.go, resolve.go and preflight.go hold no SDK types;
// mgn.go is the adapter that talks to AWS Application Migration Service (MGN) and EC2 through
// aws-sdk-go-v2 and translates their shapes into the domain.
//
// The package imports none of cutoverbot's other packages: it knows no chat and no database.
package migration
