// Package awsmgn is cutoverbot's adapter to AWS Application Migration Service (MGN) and EC2:
// a Client over the aws-sdk-go-v2 clients that answers in the migration package's domain
// types and maps AWS's errors onto its kinds (migration.ErrConflict, ...).
//
// Reads are retried by the SDK's standard retryer and paginated by its paginators. Calls that
// change something (launches, lifecycle changes, finalizing) are sent once and never retried:
// after an answer that does not prove MGN refused, the Client asks MGN what happened (the job
// carrying the request's tag, or the server's state) before it says either way.
package awsmgn
