package mgnemu

import (
	"container/heap"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Job statuses, types and launch statuses as on the wire.
const (
	jobPending   = "PENDING"
	jobStarted   = "STARTED"
	jobCompleted = "COMPLETED"
)

// terminatedVisible is how long EC2 keeps showing a terminated instance.
const terminatedVisible = time.Hour

type job struct {
	Job
	log         []JobLog
	serversLeft int
}

func (j *job) active() bool { return j.Status != jobCompleted }

func (j *job) participant(id string) *ParticipatingServer {
	for i := range j.ParticipatingServers {
		if j.ParticipatingServers[i].SourceServerID == id {
			return &j.ParticipatingServers[i]
		}
	}
	return nil
}

func (j *job) logEvent(at time.Time, event string, data *JobLogEventData) {
	j.log = append(j.log, JobLog{LogDateTime: FormatTime(at), Event: event, EventData: data})
}

type instance struct {
	Instance
	target bool // a test or cutover instance: later launches and TerminateTargetInstances remove it
}

// action is a state change scheduled on the clock. Job progress is a pure
// function of the clock: every request first runs the actions whose time has come.
type action struct {
	at  time.Time
	seq uint64
	fn  func(at time.Time)
}

type actionQueue []action

func (q actionQueue) Len() int { return len(q) }
func (q actionQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q actionQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *actionQueue) Push(x any)   { *q = append(*q, x.(action)) }
func (q *actionQueue) Pop() any {
	old := *q
	a := old[len(old)-1]
	*q = old[:len(old)-1]
	return a
}

func (s *Server) scheduleLocked(at time.Time, fn func(at time.Time)) {
	s.seq++
	heap.Push(&s.queue, action{at: at, seq: s.seq, fn: fn})
}

// advanceLocked runs, in time order, every scheduled action due by the clock.
func (s *Server) advanceLocked() {
	now := s.now()
	if now.After(s.advancedTo) {
		s.advancedTo = now
	}
	for len(s.queue) > 0 && !s.queue[0].at.After(s.advancedTo) {
		a := heap.Pop(&s.queue).(action)
		a.fn(a.at)
	}
}

func (s *Server) activeJobsLocked() []*job {
	var out []*job
	for _, id := range s.jobIDs {
		if j := s.jobs[id]; j.active() {
			out = append(out, j)
		}
	}
	return out
}

// activeJobOfLocked returns the active job processing server id, if any.
func (s *Server) activeJobOfLocked(id string) *job {
	for _, j := range s.activeJobsLocked() {
		if j.participant(id) != nil {
			return j
		}
	}
	return nil
}

func (s *Server) newJobLocked(typ, initiatedBy string, ids []string, tags map[string]string, now time.Time) *job {
	id := s.newIDLocked("mgnjob-")
	j := &job{Job: Job{
		JobID:            id,
		Arn:              fmt.Sprintf("arn:aws:mgn:%s:%s:job/%s", s.region, s.account, id),
		Type:             typ,
		InitiatedBy:      initiatedBy,
		CreationDateTime: FormatTime(now),
		Status:           jobPending,
		Tags:             maps.Clone(tags),
	}, serversLeft: len(ids)}
	for _, sid := range ids {
		j.ParticipatingServers = append(j.ParticipatingServers, ParticipatingServer{SourceServerID: sid, LaunchStatus: "PENDING"})
	}
	s.jobs[id] = j
	s.jobIDs = append(s.jobIDs, id)
	s.scheduleLocked(now.Add(s.pace.Start), func(at time.Time) {
		j.Status = jobStarted
		j.logEvent(at, "JOB_START", nil)
	})
	return j
}

// serverDoneLocked ends a server's part in j; the last one ends the job.
func (s *Server) serverDoneLocked(j *job, at time.Time) {
	j.serversLeft--
	if j.serversLeft > 0 {
		return
	}
	j.logEvent(at, "JOB_END", nil)
	j.Status = jobCompleted
	j.EndDateTime = FormatTime(at)
}

// startLaunchLocked creates a LAUNCH job and schedules its whole event sequence.
func (s *Server) startLaunchLocked(initiatedBy string, ids []string, tags map[string]string, now time.Time) *job {
	j := s.newJobLocked("LAUNCH", initiatedBy, ids, tags, now)
	p := s.pace
	for i, sid := range ids {
		f, hasFault := s.phases[sid]
		if hasFault {
			delete(s.phases, sid)
		}
		failsAt := func(event string) bool { return hasFault && f.event == event }
		actions, actionFaults := activeActions(s.servers[sid]), s.actionFaults[sid]
		delete(s.actionFaults, sid)
		data := func() *JobLogEventData { return &JobLogEventData{SourceServerID: sid} }
		fail := func(at time.Time, event string, d *JobLogEventData) {
			d.RawError = f.rawError
			j.logEvent(at, event, d)
			j.participant(sid).LaunchStatus = "FAILED"
			s.serverDoneLocked(j, at)
		}

		t := now.Add(p.Start + time.Duration(i)*p.Stagger)
		var earlier []*instance
		s.scheduleLocked(t, func(at time.Time) {
			j.participant(sid).LaunchStatus = "IN_PROGRESS"
			j.logEvent(at, "CLEANUP_START", data())
			earlier = s.targetInstancesLocked(sid)
			for _, in := range earlier {
				in.State = "shutting-down"
			}
		})
		t = t.Add(p.Cleanup)
		if failsAt("CLEANUP_FAIL") {
			s.scheduleLocked(t, func(at time.Time) {
				for _, in := range earlier {
					in.State = "running"
				}
				fail(at, "CLEANUP_FAIL", data())
			})
			continue
		}
		s.scheduleLocked(t, func(at time.Time) {
			for _, in := range earlier {
				s.terminatedLocked(in, at)
			}
			j.logEvent(at, "CLEANUP_END", data())
			j.logEvent(at, "SNAPSHOT_START", data())
		})
		t = t.Add(p.Snapshot)
		if failsAt("SNAPSHOT_FAIL") {
			s.scheduleLocked(t, func(at time.Time) { fail(at, "SNAPSHOT_FAIL", data()) })
			continue
		}
		var conv *instance
		s.scheduleLocked(t, func(at time.Time) {
			j.logEvent(at, "SNAPSHOT_END", data())
			if srv := s.servers[sid]; srv != nil {
				srv.DataReplicationInfo.LastSnapshotDateTime = FormatTime(at)
			}
			conv = s.addInstanceLocked(s.newIDLocked("i-"), "pending", "m5.large", at, map[string]string{"Name": ConversionServerName}, false)
			s.scheduleLocked(at.Add(min(p.Boot, p.Conversion/2)), func(time.Time) {
				if conv.State == "pending" {
					conv.State = "running"
				}
			})
			d := data()
			d.ConversionServerID = conv.InstanceID
			j.logEvent(at, "CONVERSION_START", d)
		})
		t = t.Add(p.Conversion)
		convDone := func(at time.Time) *JobLogEventData {
			s.shutDownLocked(conv, at)
			d := data()
			d.ConversionServerID = conv.InstanceID
			return d
		}
		if failsAt("CONVERSION_FAIL") {
			s.scheduleLocked(t, func(at time.Time) { fail(at, "CONVERSION_FAIL", convDone(at)) })
			continue
		}
		var target *instance
		var previous *LaunchedInstance
		s.scheduleLocked(t, func(at time.Time) {
			j.logEvent(at, "CONVERSION_END", convDone(at))
			srv := s.servers[sid]
			var tags map[string]string
			itype := "t3.medium"
			if srv != nil {
				tags = targetTags(srv, j.JobID)
				itype = instanceTypeOf(srv)
				previous = srv.LaunchedInstance
			} else {
				tags = map[string]string{"Name": sid}
			}
			target = s.addInstanceLocked(s.newIDLocked("i-"), "pending", itype, at, tags, true)
			j.participant(sid).LaunchedEc2InstanceID = target.InstanceID
			if srv != nil {
				srv.LaunchedInstance = &LaunchedInstance{EC2InstanceID: target.InstanceID, FirstBoot: "WAITING", JobID: j.JobID}
			}
			d := data()
			d.TargetInstanceID = target.InstanceID
			j.logEvent(at, "LAUNCH_START", d)
		})
		t = t.Add(p.Launch)
		if failsAt("LAUNCH_FAILED") {
			s.scheduleLocked(t, func(at time.Time) {
				s.terminatedLocked(target, at)
				if srv := s.servers[sid]; srv != nil {
					srv.LaunchedInstance = previous
				}
				d := data()
				d.TargetInstanceID = target.InstanceID
				fail(at, "LAUNCH_FAILED", d)
			})
			continue
		}
		s.scheduleLocked(t, func(at time.Time) {
			if target.State == "pending" {
				target.State = "running"
			}
			j.participant(sid).LaunchStatus = "LAUNCHED"
		})
		t = t.Add(p.FirstBoot)
		s.scheduleLocked(t, func(at time.Time) {
			if srv := s.servers[sid]; srv != nil && srv.LaunchedInstance != nil && srv.LaunchedInstance.EC2InstanceID == target.InstanceID {
				srv.LaunchedInstance.FirstBoot = "SUCCEEDED"
			}
			s.serverDoneLocked(j, at)
			s.runPostLaunchLocked(j, sid, target, actions, actionFaults, at)
		})
	}
	return j
}

// startTerminateLocked creates a TERMINATE job that removes the servers' launched instances.
func (s *Server) startTerminateLocked(ids []string, tags map[string]string, now time.Time) *job {
	j := s.newJobLocked("TERMINATE", "TERMINATE", ids, tags, now)
	p := s.pace
	for i, sid := range ids {
		t := now.Add(p.Start + time.Duration(i)*p.Stagger)
		var victims []*instance
		s.scheduleLocked(t, func(at time.Time) {
			j.participant(sid).LaunchStatus = "IN_PROGRESS"
			j.logEvent(at, "CLEANUP_START", &JobLogEventData{SourceServerID: sid})
			victims = s.targetInstancesLocked(sid)
			for _, in := range victims {
				in.State = "shutting-down"
			}
		})
		s.scheduleLocked(t.Add(p.Cleanup), func(at time.Time) {
			for _, in := range victims {
				s.terminatedLocked(in, at)
			}
			j.logEvent(at, "CLEANUP_END", &JobLogEventData{SourceServerID: sid})
			j.participant(sid).LaunchStatus = "TERMINATED"
			s.serverDoneLocked(j, at)
		})
	}
	return j
}

// targetInstancesLocked returns the live test/cutover instances of a source server.
func (s *Server) targetInstancesLocked(sid string) []*instance {
	var out []*instance
	for _, id := range s.instIDs {
		in := s.instances[id]
		if in.target && in.Tags["AWSApplicationMigrationServiceSourceServerID"] == sid &&
			in.State != "terminated" && in.State != "shutting-down" {
			out = append(out, in)
		}
	}
	return out
}

// addInstanceLocked creates an EC2 instance in its own reservation.
func (s *Server) addInstanceLocked(id, state, itype string, at time.Time, tags map[string]string, target bool) *instance {
	s.ipSeq++
	priv := fmt.Sprintf("10.0.%d.%d", (s.ipSeq/250)%250, s.ipSeq%250+4)
	in := &instance{target: target, Instance: Instance{
		InstanceID:       id,
		ReservationID:    s.newIDLocked("r-"),
		ImageID:          "ami-" + StableID("", itype)[:17],
		State:            state,
		InstanceType:     itype,
		PrivateIPAddress: priv,
		PrivateDNSName:   "ip-" + strings.ReplaceAll(priv, ".", "-") + "." + s.region + ".compute.internal",
		SubnetID:         StableID("subnet-", s.region+"/subnet"),
		VpcID:            StableID("vpc-", s.region+"/vpc"),
		LaunchTime:       at.UTC().Truncate(time.Millisecond),
		Tags:             maps.Clone(tags),
	}}
	if target {
		in.PublicIPAddress = fmt.Sprintf("3.%d.%d.%d", 120+(s.ipSeq>>16)%4, (s.ipSeq>>8)%256, s.ipSeq%256)
	}
	if _, ok := s.instances[id]; !ok {
		s.instIDs = append(s.instIDs, id)
	}
	s.instances[id] = in
	return in
}

// shutDownLocked starts terminating an instance; it is terminated after Pace.Shutdown.
func (s *Server) shutDownLocked(in *instance, at time.Time) {
	if in.State == "terminated" || in.State == "shutting-down" {
		return
	}
	in.State = "shutting-down"
	s.scheduleLocked(at.Add(s.pace.Shutdown), func(at time.Time) { s.terminatedLocked(in, at) })
}

// terminatedLocked marks an instance terminated; EC2 stops showing it an hour later.
func (s *Server) terminatedLocked(in *instance, at time.Time) {
	if in.State == "terminated" {
		return
	}
	in.State = "terminated"
	in.PublicIPAddress = ""
	in.PrivateIPAddress = ""
	in.PrivateDNSName = ""
	s.scheduleLocked(at.Add(terminatedVisible), func(time.Time) {
		if s.instances[in.InstanceID] != in {
			return
		}
		delete(s.instances, in.InstanceID)
		s.instIDs = slices.DeleteFunc(s.instIDs, func(id string) bool { return id == in.InstanceID })
	})
}

// targetTags are the tags MGN puts on a test or cutover instance.
func targetTags(srv *SourceServer, jobID string) map[string]string {
	name := srv.Tags["Name"]
	if name == "" {
		name = srv.SourceProperties.IdentificationHints.Hostname
	}
	if name == "" {
		name = srv.SourceServerID
	}
	t := map[string]string{
		"Name":                                  name,
		"AWSApplicationMigrationServiceManaged": "mgn.amazonaws.com",
		"AWSApplicationMigrationServiceSourceServerID": srv.SourceServerID,
		"mgn.amazonaws.com-source-server":              srv.SourceServerID,
	}
	if jobID != "" {
		t["mgn.amazonaws.com-job"] = jobID
	}
	return t
}

func instanceTypeOf(srv *SourceServer) string {
	if t := srv.SourceProperties.RecommendedInstanceType; t != "" {
		return t
	}
	return "t3.medium"
}
