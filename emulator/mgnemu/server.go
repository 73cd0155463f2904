package mgnemu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Now is the clock that drives jobs; nil means time.Now.
	Now func() time.Time
	// Pace sets phase durations; zero means FastPace().
	Pace Pace
	// Servers are the initial source servers (see SampleFleet, GenerateFleet).
	Servers []SourceServer
	// Applications and Waves are the initial applications and waves (see
	// SampleApplications, SampleWaves, GenerateWave).
	Applications []Application
	Waves        []Wave
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// Region and AccountID appear in ARNs and EC2 owner IDs;
	// defaults eu-central-1 and 111122223333.
	Region, AccountID string
	// Seed makes generated IDs and IPs reproducible; 0 is a fixed default.
	Seed uint64
	// MaxServersInActiveJobs is the quota of source servers across all active jobs; 0 means
	// MGN's 200. Load tests raise it to drive more servers at once than MGN would take.
	MaxServersInActiveJobs int
	// MaxActiveJobs is the quota of jobs in progress at once; 0 means MGN's 20. Load tests
	// raise it like MaxServersInActiveJobs.
	MaxActiveJobs int
}

// Server is an MGN + EC2 emulator. Create it with New, then either Start it on a
// listener or mount Handler. All methods are safe for concurrent use.
type Server struct {
	now  func() time.Time
	pace Pace
	// maxActiveServers is the quota of servers across active jobs; maxJobs of active jobs.
	maxActiveServers, maxJobs int
	logger                    *slog.Logger
	region                    string
	account                   string

	mu         sync.Mutex
	servers    map[string]*SourceServer
	serverIDs  []string // insertion order
	jobs       map[string]*job
	jobIDs     []string // creation order
	instances  map[string]*instance
	instIDs    []string // creation order
	waves      map[string]*Wave
	waveIDs    []string // insertion order
	apps       map[string]*Application
	appIDs     []string // insertion order
	queue      actionQueue
	advancedTo time.Time
	seq        uint64
	rng        *rand.Rand
	ipSeq      uint32

	calls     map[string]int
	unmodeled []string
	throttle  map[string]int
	fails     map[string]failSpec
	latency   map[string]time.Duration
	phases    map[string]phaseFault
	// actionFaults maps a server ID to its next launch's failing actions:
	// action name to failureReason.
	actionFaults map[string]map[string]string

	httpSrv *http.Server
	ln      net.Listener
	serveWG sync.WaitGroup
}

type failSpec struct {
	n       int
	status  int
	errType string
}

type phaseFault struct {
	event    string
	rawError string
}

// New returns an emulator holding opts.Servers. It does not listen yet.
func New(opts Options) *Server {
	s := &Server{
		now:       opts.Now,
		pace:      opts.Pace,
		logger:    opts.Logger,
		region:    opts.Region,
		account:   opts.AccountID,
		servers:   map[string]*SourceServer{},
		jobs:      map[string]*job{},
		instances: map[string]*instance{},
		waves:     map[string]*Wave{},
		apps:      map[string]*Application{},
		calls:     map[string]int{},
		throttle:  map[string]int{},
		fails:     map[string]failSpec{},
		latency:   map[string]time.Duration{},
		phases:    map[string]phaseFault{},

		actionFaults: map[string]map[string]string{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.maxActiveServers, s.maxJobs = opts.MaxServersInActiveJobs, opts.MaxActiveJobs
	if s.maxJobs <= 0 {
		s.maxJobs = maxActiveJobs
	}
	if s.maxActiveServers <= 0 {
		s.maxActiveServers = maxServersActiveJobs
	}
	if s.pace == (Pace{}) {
		s.pace = FastPace()
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.region == "" {
		s.region = "eu-central-1"
	}
	if s.account == "" {
		s.account = "111122223333"
	}
	seed := opts.Seed
	if seed == 0 {
		seed = 0x6d676e656d75 // "mgnemu"
	}
	s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s.Add(opts.Servers...)
	s.AddWaves(opts.Waves...)
	s.AddApplications(opts.Applications...)
	return s
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves in the
// background until Close.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("mgnemu: listen %s: %w", addr, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.httpSrv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	srv := s.httpSrv
	s.mu.Unlock()
	s.serveWG.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("serve", "err", err)
		}
	})
	return nil
}

// URL returns the base URL, e.g. http://127.0.0.1:41234, or "" before Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops the listener and waits for in-flight requests. It is safe to call
// more than once and on a Server that was never started.
func (s *Server) Close() {
	s.mu.Lock()
	srv := s.httpSrv
	s.httpSrv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
	}
	s.serveWG.Wait()
}

// Handler returns the HTTP handler serving both MGN (POST /<Operation>, JSON)
// and EC2 (POST / with a form body carrying Action=...).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	reqID := s.requestID()
	if r.URL.Path == "/" && r.Method == http.MethodPost {
		s.serveEC2(w, r, body, reqID)
		return
	}
	op := strings.TrimPrefix(r.URL.Path, "/")
	if r.Method != http.MethodPost || op == "" || strings.Contains(op, "/") {
		op = r.Method + " " + r.URL.Path
	}
	s.serveMGN(w, r, op, body, reqID)
}

// begin counts a call, applies latency and the throttle/fail hooks, and advances
// jobs to the clock. It returns a fault to answer with instead, if any.
func (s *Server) begin(ctx context.Context, op string) (*fault, bool) {
	s.mu.Lock()
	s.calls[op]++
	d, ok := s.latency[op]
	if !ok {
		d = s.latency[""]
	}
	s.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false
		case <-t.C:
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.throttle[op]; n > 0 {
		s.throttle[op] = n - 1
		return &fault{throttle: true}, true
	}
	if f, ok := s.fails[op]; ok && f.n > 0 {
		f.n--
		s.fails[op] = f
		return &fault{status: f.status, errType: f.errType}, true
	}
	s.advanceLocked()
	return nil, true
}

type fault struct {
	throttle bool
	status   int
	errType  string
}

// Throttle makes the next n calls of op answer 429 ThrottlingException
// (503 RequestLimitExceeded for EC2 operations).
func (s *Server) Throttle(op string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle[op] = n
}

// Fail makes the next n calls of op answer status with error type errType,
// e.g. Fail("DescribeJobs", 2, 500, "InternalServerException").
func (s *Server) Fail(op string, n int, status int, errType string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails[op] = failSpec{n: n, status: status, errType: errType}
}

// SetLatency delays every answer to op by d ("" = all operations without their
// own setting). A request whose context ends first gets no answer.
func (s *Server) SetLatency(op string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency[op] = d
}

// FailPhase makes the next launch of serverID fail at event, one of CLEANUP_FAIL,
// SNAPSHOT_FAIL, CONVERSION_FAIL or LAUNCH_FAILED, with rawError in the job log.
// The participant ends FAILED; the job still ends COMPLETED, as on AWS.
func (s *Server) FailPhase(serverID, event, rawError string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phases[serverID] = phaseFault{event: event, rawError: rawError}
}

// Calls returns how many requests for op arrived (every attempt counts,
// including those answered by a fault hook).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// ResetCalls zeroes all call counters.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

// Unmodeled returns the operations received that the emulator does not model,
// in arrival order ("GetLaunchConfiguration", "RunInstances", "GET /tags/...").
func (s *Server) Unmodeled() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.unmodeled)
}

// Add adds or replaces source servers. Missing ARNs are filled in, and the EC2
// instances they refer to (replication server, launched instance) are created
// as running if absent.
func (s *Server) Add(servers ...SourceServer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, srv := range servers {
		srv = srv.clone()
		if srv.Arn == "" {
			srv.Arn = fmt.Sprintf("arn:aws:mgn:%s:%s:source-server/%s", s.region, s.account, srv.SourceServerID)
		}
		if _, ok := s.servers[srv.SourceServerID]; !ok {
			s.serverIDs = append(s.serverIDs, srv.SourceServerID)
		}
		s.servers[srv.SourceServerID] = &srv
		if rid := srv.DataReplicationInfo.ReplicatorID; rid != "" && s.instances[rid] == nil {
			s.addInstanceLocked(rid, "running", "t3.small", now, map[string]string{"Name": ReplicationServerName}, false)
		}
		if li := srv.LaunchedInstance; li != nil && li.EC2InstanceID != "" && s.instances[li.EC2InstanceID] == nil {
			s.addInstanceLocked(li.EC2InstanceID, "running", instanceTypeOf(&srv), now, targetTags(&srv, li.JobID), true)
		}
	}
}

// Server returns a copy of the source server with that ID, as it is now.
func (s *Server) Server(id string) (SourceServer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	srv, ok := s.servers[id]
	if !ok {
		return SourceServer{}, false
	}
	return srv.clone(), true
}

// Update applies fn to the stored source server with that ID and reports whether
// it exists. Use it to move replication along, stall it or change the lag.
func (s *Server) Update(id string, fn func(*SourceServer)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	srv, ok := s.servers[id]
	if !ok {
		return false
	}
	fn(srv)
	srv.SourceServerID = id
	return true
}

// Servers returns copies of all source servers in insertion order.
func (s *Server) Servers() []SourceServer {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	out := make([]SourceServer, 0, len(s.serverIDs))
	for _, id := range s.serverIDs {
		out = append(out, s.servers[id].clone())
	}
	return out
}

// Jobs returns copies of all jobs, newest first, as DescribeJobs orders them.
func (s *Server) Jobs() []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	out := make([]Job, 0, len(s.jobIDs))
	for i := len(s.jobIDs) - 1; i >= 0; i-- {
		out = append(out, clone(s.jobs[s.jobIDs[i]].Job))
	}
	return out
}

// JobLog returns a copy of a job's log so far, oldest first.
func (s *Server) JobLog(jobID string) ([]JobLog, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	j, ok := s.jobs[jobID]
	if !ok {
		return nil, false
	}
	return clone(j.log), true
}

// Instances returns copies of the EC2 instances DescribeInstances would show,
// in launch order.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	out := make([]Instance, 0, len(s.instIDs))
	for _, id := range s.instIDs {
		out = append(out, clone(s.instances[id].Instance))
	}
	return out
}

// requestID returns a UUID-shaped request ID.
func (s *Server) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b [16]byte
	for i := range b {
		b[i] = byte(s.rng.UintN(256))
	}
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newIDLocked returns prefix + 17 lowercase hex digits.
func (s *Server) newIDLocked(prefix string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for range 17 {
		b.WriteByte("0123456789abcdef"[s.rng.UintN(16)])
	}
	return b.String()
}

// StableID returns prefix + 17 lowercase hex digits derived from name, for
// reproducible fixtures: StableID("s-", "web01").
func StableID(prefix, name string) string {
	sum := sha256.Sum256([]byte(name))
	return prefix + hex.EncodeToString(sum[:])[:17]
}

// writeJSON answers status with v as a JSON body.
func writeJSON(w http.ResponseWriter, status int, reqID string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"message":"emulator could not encode the response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Requestid", reqID)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
