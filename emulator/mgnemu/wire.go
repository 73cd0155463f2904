package mgnemu

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SourceServer is an MGN source server exactly as DescribeSourceServers returns it.
// Datetimes and durations are strings, as in the service model: use FormatTime and
// FormatDuration to fill them.
type SourceServer struct {
	SourceServerID         string              `json:"sourceServerID"`
	Arn                    string              `json:"arn,omitempty"`
	IsArchived             bool                `json:"isArchived"`
	Tags                   map[string]string   `json:"tags,omitempty"`
	ReplicationType        string              `json:"replicationType,omitempty"`
	LifeCycle              LifeCycle           `json:"lifeCycle"`
	DataReplicationInfo    DataReplicationInfo `json:"dataReplicationInfo"`
	SourceProperties       SourceProperties    `json:"sourceProperties"`
	LaunchedInstance       *LaunchedInstance   `json:"launchedInstance,omitempty"`
	ApplicationID          string              `json:"applicationID,omitempty"`
	UserProvidedID         string              `json:"userProvidedID,omitempty"`
	FqdnForActionFramework string              `json:"fqdnForActionFramework,omitempty"`
	VcenterClientID        string              `json:"vcenterClientID,omitempty"`

	// PostLaunchActions are the server's post-launch actions (SSM documents), as
	// ListSourceServerActions returns them. They are not part of the
	// SourceServer on the wire. Only active ones run after a launch, in order.
	PostLaunchActions []SourceServerAction `json:"-"`
}

// LifeCycle is a source server's lifecycle. Unset last-launch records are sent as {}.
type LifeCycle struct {
	State                      string     `json:"state,omitempty"`
	AddedToServiceDateTime     string     `json:"addedToServiceDateTime,omitempty"`
	FirstByteDateTime          string     `json:"firstByteDateTime,omitempty"`
	LastSeenByServiceDateTime  string     `json:"lastSeenByServiceDateTime,omitempty"`
	ElapsedReplicationDuration string     `json:"elapsedReplicationDuration,omitempty"`
	LastTest                   LastLaunch `json:"lastTest"`
	LastCutover                LastLaunch `json:"lastCutover"`
}

// LastLaunch is lifeCycle.lastTest or lifeCycle.lastCutover.
type LastLaunch struct {
	Initiated LaunchInitiated `json:"initiated"`
	Reverted  APICall         `json:"reverted"`
	Finalized APICall         `json:"finalized"`
}

// LaunchInitiated records the API call that started a launch and its job.
type LaunchInitiated struct {
	APICallDateTime string `json:"apiCallDateTime,omitempty"`
	JobID           string `json:"jobID,omitempty"`
}

// APICall records when a lifecycle API call was made; empty = never.
type APICall struct {
	APICallDateTime string `json:"apiCallDateTime,omitempty"`
}

// DataReplicationInfo is a source server's replication status.
type DataReplicationInfo struct {
	DataReplicationState string `json:"dataReplicationState,omitempty"`
	// LagDuration is an ISO-8601 duration; "" means null (server not launchable).
	LagDuration               string                     `json:"lagDuration,omitempty"`
	LastSnapshotDateTime      string                     `json:"lastSnapshotDateTime,omitempty"`
	EtaDateTime               string                     `json:"etaDateTime,omitempty"`
	ReplicatorID              string                     `json:"replicatorId,omitempty"`
	ReplicatedDisks           []ReplicatedDisk           `json:"replicatedDisks,omitempty"`
	DataReplicationInitiation *DataReplicationInitiation `json:"dataReplicationInitiation,omitempty"`
	DataReplicationError      *DataReplicationError      `json:"dataReplicationError,omitempty"`
}

// ReplicatedDisk is one disk's replication progress, in bytes.
type ReplicatedDisk struct {
	DeviceName             string `json:"deviceName"`
	TotalStorageBytes      int64  `json:"totalStorageBytes"`
	ReplicatedStorageBytes int64  `json:"replicatedStorageBytes"`
	RescannedStorageBytes  int64  `json:"rescannedStorageBytes"`
	BackloggedStorageBytes int64  `json:"backloggedStorageBytes"`
}

// DataReplicationInitiation describes how replication was set up.
type DataReplicationInitiation struct {
	StartDateTime       string                          `json:"startDateTime,omitempty"`
	NextAttemptDateTime string                          `json:"nextAttemptDateTime,omitempty"`
	Steps               []DataReplicationInitiationStep `json:"steps,omitempty"`
}

// DataReplicationInitiationStep is one step of replication setup.
type DataReplicationInitiationStep struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// DataReplicationError is why replication is stalled.
type DataReplicationError struct {
	Error    string `json:"error,omitempty"`
	RawError string `json:"rawError,omitempty"`
}

// SourceProperties is what the agent reported about the source machine.
type SourceProperties struct {
	LastUpdatedDateTime     string              `json:"lastUpdatedDateTime,omitempty"`
	RecommendedInstanceType string              `json:"recommendedInstanceType,omitempty"`
	IdentificationHints     IdentificationHints `json:"identificationHints"`
	OS                      *OS                 `json:"os,omitempty"`
	RAMBytes                int64               `json:"ramBytes,omitempty"`
	CPUs                    []CPU               `json:"cpus,omitempty"`
	Disks                   []Disk              `json:"disks,omitempty"`
	NetworkInterfaces       []NetworkInterface  `json:"networkInterfaces,omitempty"`
}

// IdentificationHints names the source machine.
type IdentificationHints struct {
	Hostname      string `json:"hostname,omitempty"`
	FQDN          string `json:"fqdn,omitempty"`
	AWSInstanceID string `json:"awsInstanceID,omitempty"`
	VMWareUUID    string `json:"vmWareUuid,omitempty"`
	VMPath        string `json:"vmPath,omitempty"`
}

// OS is the source operating system.
type OS struct {
	FullString string `json:"fullString,omitempty"`
}

// CPU is one source CPU.
type CPU struct {
	Cores     int64  `json:"cores"`
	ModelName string `json:"modelName,omitempty"`
}

// Disk is one source disk.
type Disk struct {
	DeviceName string `json:"deviceName,omitempty"`
	Bytes      int64  `json:"bytes"`
}

// NetworkInterface is one source network interface.
type NetworkInterface struct {
	IPs        []string `json:"ips,omitempty"`
	IsPrimary  bool     `json:"isPrimary"`
	MacAddress string   `json:"macAddress,omitempty"`
}

// LaunchedInstance is the latest test or cutover instance of a source server.
type LaunchedInstance struct {
	EC2InstanceID string `json:"ec2InstanceID,omitempty"`
	FirstBoot     string `json:"firstBoot,omitempty"`
	JobID         string `json:"jobID,omitempty"`
}

// Job is an MGN job as DescribeJobs returns it.
type Job struct {
	JobID                string                `json:"jobID"`
	Arn                  string                `json:"arn,omitempty"`
	Type                 string                `json:"type,omitempty"`
	InitiatedBy          string                `json:"initiatedBy,omitempty"`
	CreationDateTime     string                `json:"creationDateTime,omitempty"`
	EndDateTime          string                `json:"endDateTime,omitempty"`
	Status               string                `json:"status,omitempty"`
	Tags                 map[string]string     `json:"tags,omitempty"`
	ParticipatingServers []ParticipatingServer `json:"participatingServers"`
}

// ParticipatingServer is one source server's part in a job.
type ParticipatingServer struct {
	SourceServerID        string `json:"sourceServerID"`
	LaunchStatus          string `json:"launchStatus,omitempty"`
	LaunchedEc2InstanceID string `json:"launchedEc2InstanceID,omitempty"`
	// PostLaunchActionsStatus is nil until the SSM agent is seen on the launched
	// instance, and stays nil for servers without active post-launch actions.
	PostLaunchActionsStatus *PostLaunchActionsStatus `json:"postLaunchActionsStatus,omitempty"`
}

// JobLog is one job log item as DescribeJobLogItems returns it.
type JobLog struct {
	LogDateTime string           `json:"logDateTime"`
	Event       string           `json:"event"`
	EventData   *JobLogEventData `json:"eventData,omitempty"`
}

// JobLogEventData is the detail of a job log item.
type JobLogEventData struct {
	SourceServerID     string `json:"sourceServerID,omitempty"`
	ConversionServerID string `json:"conversionServerID,omitempty"`
	TargetInstanceID   string `json:"targetInstanceID,omitempty"`
	RawError           string `json:"rawError,omitempty"`
	AttemptCount       int32  `json:"attemptCount,omitempty"`
	MaxAttemptsCount   int32  `json:"maxAttemptsCount,omitempty"`
}

// Instance is an EC2 instance as DescribeInstances reports it (the ec2query
// element names are given in the comments).
type Instance struct {
	InstanceID       string            // instanceId
	ReservationID    string            // reservationId of the enclosing reservation
	ImageID          string            // imageId
	State            string            // instanceState/name: pending, running, shutting-down, terminated
	InstanceType     string            // instanceType
	PrivateIPAddress string            // privateIpAddress
	PublicIPAddress  string            // ipAddress; "" = none (element omitted)
	PrivateDNSName   string            // privateDnsName
	SubnetID         string            // subnetId
	VpcID            string            // vpcId
	LaunchTime       time.Time         // launchTime
	Tags             map[string]string // tagSet
}

// Well-known Name tags of the instances MGN runs for itself.
const (
	ConversionServerName  = "AWS Application Migration Service Conversion Server"
	ReplicationServerName = "AWS Application Migration Service Replication Server"
)

// timeLayout is the service's datetime format: microseconds and a +00:00 offset.
const timeLayout = "2006-01-02T15:04:05.000000-07:00"

// FormatTime formats t as the service does, e.g. 2022-08-31T14:33:26.983505+00:00.
// The zero time formats as "".
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// FormatDuration formats d as an ISO-8601 duration as the service does:
// P0D, PT5S, PT16H20M38.697305S, P2DT3H. Negative durations format as P0D.
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "P0D"
	}
	d = d.Round(time.Microsecond)
	var b strings.Builder
	b.WriteString("P")
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dD", days)
		d -= days * 24 * time.Hour
	}
	if d == 0 {
		return b.String()
	}
	b.WriteString("T")
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dH", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dM", m)
		d -= m * time.Minute
	}
	if d > 0 {
		s := d / time.Second
		if us := (d % time.Second) / time.Microsecond; us > 0 {
			frac := strings.TrimRight(fmt.Sprintf("%06d", us), "0")
			fmt.Fprintf(&b, "%d.%sS", s, frac)
		} else {
			fmt.Fprintf(&b, "%dS", s)
		}
	}
	return b.String()
}

// parseDuration reads an ISO-8601 duration of days, hours, minutes and seconds
// as FormatDuration writes it (PT16H20M38.697305S); ok is false for "" (null)
// and anything else it cannot read.
func parseDuration(v string) (d time.Duration, ok bool) {
	rest, found := strings.CutPrefix(v, "P")
	if !found || rest == "" {
		return 0, false
	}
	units, inTime := "D", false // the designators still allowed, in order
	for rest != "" {
		if rest[0] == 'T' {
			if len(rest) == 1 || inTime {
				return 0, false
			}
			rest, units, inTime = rest[1:], "HMS", true
		}
		n := strings.IndexFunc(rest, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if n <= 0 {
			return 0, false
		}
		k := strings.IndexByte(units, rest[n])
		num, err := strconv.ParseFloat(rest[:n], 64)
		if k < 0 || err != nil || rest[n] != 'S' && strings.Contains(rest[:n], ".") {
			return 0, false
		}
		var unit time.Duration
		switch rest[n] {
		case 'D':
			unit = 24 * time.Hour
		case 'H':
			unit = time.Hour
		case 'M':
			unit = time.Minute
		default:
			unit = time.Second
		}
		d += time.Duration(num * float64(unit))
		units, rest = units[k+1:], rest[n+1:]
	}
	return d, true
}

// clone deep-copies v through its wire form, so callers never share state with the emulator.
func clone[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("mgnemu: clone %T: %v", v, err))
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("mgnemu: clone %T: %v", v, err))
	}
	return out
}

// clone returns a deep copy of s.
func (s SourceServer) clone() SourceServer {
	s.Tags = maps.Clone(s.Tags)
	d := &s.DataReplicationInfo
	d.ReplicatedDisks = slices.Clone(d.ReplicatedDisks)
	if d.DataReplicationInitiation != nil {
		in := *d.DataReplicationInitiation
		in.Steps = slices.Clone(in.Steps)
		d.DataReplicationInitiation = &in
	}
	if d.DataReplicationError != nil {
		e := *d.DataReplicationError
		d.DataReplicationError = &e
	}
	p := &s.SourceProperties
	if p.OS != nil {
		os := *p.OS
		p.OS = &os
	}
	p.CPUs = slices.Clone(p.CPUs)
	p.Disks = slices.Clone(p.Disks)
	p.NetworkInterfaces = slices.Clone(p.NetworkInterfaces)
	for i := range p.NetworkInterfaces {
		p.NetworkInterfaces[i].IPs = slices.Clone(p.NetworkInterfaces[i].IPs)
	}
	if s.LaunchedInstance != nil {
		li := *s.LaunchedInstance
		s.LaunchedInstance = &li
	}
	if s.PostLaunchActions != nil {
		actions := make([]SourceServerAction, len(s.PostLaunchActions))
		for i, a := range s.PostLaunchActions {
			actions[i] = a.clone()
		}
		s.PostLaunchActions = actions
	}
	return s
}
