package mgnemu

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ec2Error is an ec2query error answer.
type ec2Error struct {
	status  int
	code    string
	message string
}

func writeEC2Error(w http.ResponseWriter, reqID string, e ec2Error) {
	type xmlErr struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	type response struct {
		XMLName   xml.Name `xml:"Response"`
		Errors    []xmlErr `xml:"Errors>Error"`
		RequestID string   `xml:"RequestID"`
	}
	writeXML(w, e.status, reqID, response{Errors: []xmlErr{{Code: e.code, Message: e.message}}, RequestID: reqID})
}

func writeXML(w http.ResponseWriter, status int, reqID string, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte("<Response><Errors><Error><Code>InternalError</Code><Message>emulator could not encode the response</Message></Error></Errors></Response>")
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("X-Amzn-Requestid", reqID)
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(b)))
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(b)
}

func (s *Server) serveEC2(w http.ResponseWriter, r *http.Request, body []byte, reqID string) {
	start := time.Now()
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeEC2Error(w, reqID, ec2Error{http.StatusBadRequest, "MalformedQueryString", "cannot parse the request body"})
		return
	}
	op := form.Get("Action")
	if op != "DescribeInstances" {
		name := op
		if name == "" {
			name = "(no Action)"
		}
		s.mu.Lock()
		s.calls[name]++
		s.unmodeled = append(s.unmodeled, name)
		s.mu.Unlock()
		s.logger.Warn("unmodeled operation", "service", "ec2", "op", name)
		writeEC2Error(w, reqID, ec2Error{http.StatusBadRequest, "InvalidAction",
			fmt.Sprintf("The action %s is not valid for this web service.", name)})
		return
	}
	f, ok := s.begin(r.Context(), op)
	if !ok {
		return
	}
	if f != nil {
		e := ec2Error{http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded."}
		if !f.throttle {
			e = ec2Error{f.status, f.errType, "injected fault: " + f.errType}
		}
		writeEC2Error(w, reqID, e)
		s.logger.Info("request", "service", "ec2", "op", op, "status", e.status, "fault", true)
		return
	}
	out, e := s.describeInstances(form, reqID)
	status := http.StatusOK
	if e != nil {
		status = e.status
		writeEC2Error(w, reqID, *e)
	} else {
		writeXML(w, status, reqID, out)
	}
	s.logger.Info("request", "service", "ec2", "op", op, "status", status, "dur", time.Since(start))
}

type ec2Filter struct {
	name   string
	values []string
}

// indexed collects prefix.N values (N = 1, 2, ...) in index order.
func indexed(form url.Values, prefix string) []string {
	type kv struct {
		n int
		v string
	}
	var items []kv
	for k, vs := range form {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || len(vs) == 0 {
			continue
		}
		items = append(items, kv{n, vs[0]})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].n < items[j].n })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.v
	}
	return out
}

func parseFilters(form url.Values) []ec2Filter {
	idx := map[int]bool{}
	for k := range form {
		rest, ok := strings.CutPrefix(k, "Filter.")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		if n, err := strconv.Atoi(num); err == nil {
			idx[n] = true
		}
	}
	ns := make([]int, 0, len(idx))
	for n := range idx {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	var out []ec2Filter
	for _, n := range ns {
		p := "Filter." + strconv.Itoa(n)
		out = append(out, ec2Filter{name: form.Get(p + ".Name"), values: indexed(form, p+".Value")})
	}
	return out
}

// wildcard matches EC2 filter values: * any run, ? one character. path.Match
// also treats [ and \ specially, so those are escaped first.
func wildcard(pattern, s string) bool {
	r := strings.NewReplacer(`\`, `\\`, `[`, `\[`, `/`, "\x00")
	ok, err := path.Match(r.Replace(pattern), strings.ReplaceAll(s, "/", "\x00"))
	return err == nil && ok
}

func matchAny(values []string, s string) bool {
	for _, v := range values {
		if wildcard(v, s) {
			return true
		}
	}
	return false
}

func (f ec2Filter) match(in *Instance) (bool, *ec2Error) {
	switch {
	case f.name == "instance-id":
		return matchAny(f.values, in.InstanceID), nil
	case f.name == "instance-state-name":
		return matchAny(f.values, in.State), nil
	case f.name == "tag-key":
		for k := range in.Tags {
			if matchAny(f.values, k) {
				return true, nil
			}
		}
		return false, nil
	case strings.HasPrefix(f.name, "tag:"):
		v, ok := in.Tags[strings.TrimPrefix(f.name, "tag:")]
		return ok && matchAny(f.values, v), nil
	default:
		return false, &ec2Error{http.StatusBadRequest, "InvalidParameterValue",
			fmt.Sprintf("The filter '%s' is invalid", f.name)}
	}
}

var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlInstance struct {
	InstanceID    string `xml:"instanceId"`
	ImageID       string `xml:"imageId"`
	InstanceState struct {
		Code int    `xml:"code"`
		Name string `xml:"name"`
	} `xml:"instanceState"`
	PrivateDNSName   string   `xml:"privateDnsName"`
	DNSName          string   `xml:"dnsName"`
	InstanceType     string   `xml:"instanceType"`
	LaunchTime       string   `xml:"launchTime"`
	SubnetID         string   `xml:"subnetId,omitempty"`
	VpcID            string   `xml:"vpcId,omitempty"`
	PrivateIPAddress string   `xml:"privateIpAddress,omitempty"`
	IPAddress        string   `xml:"ipAddress,omitempty"`
	Tags             []xmlTag `xml:"tagSet>item"`
}

type xmlReservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type describeInstancesResponse struct {
	XMLName        xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeInstancesResponse"`
	RequestID      string   `xml:"requestId"`
	ReservationSet struct {
		Items []xmlReservation `xml:"item"`
	} `xml:"reservationSet"`
	NextToken string `xml:"nextToken,omitempty"`
}

func (s *Server) describeInstances(form url.Values, reqID string) (*describeInstancesResponse, *ec2Error) {
	ids := indexed(form, "InstanceId")
	filters := parseFilters(form)
	limit := 0
	if v := form.Get("MaxResults"); v != "" {
		if len(ids) > 0 {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidParameterCombination",
				"The parameter instancesSet cannot be used with the parameter maxResults"}
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > 1000 {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidParameterValue",
				fmt.Sprintf("Value ( %s ) for parameter maxResults is invalid. Expecting a value greater than 5.", v)}
		}
		limit = n
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var missing []string
	for _, id := range ids {
		if !strings.HasPrefix(id, "i-") || len(id) < 10 {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidInstanceID.Malformed",
				fmt.Sprintf("Invalid id: \"%s\"", id)}
		}
		if s.instances[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) == 1 {
		return nil, &ec2Error{http.StatusBadRequest, "InvalidInstanceID.NotFound",
			fmt.Sprintf("The instance ID '%s' does not exist", missing[0])}
	}
	if len(missing) > 1 {
		return nil, &ec2Error{http.StatusBadRequest, "InvalidInstanceID.NotFound",
			fmt.Sprintf("The instance IDs '%s' do not exist", strings.Join(missing, ", "))}
	}

	var matched []*Instance
	for _, id := range s.instIDs {
		in := &s.instances[id].Instance
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		keep := true
		for _, f := range filters {
			ok, err := f.match(in)
			if err != nil {
				return nil, err
			}
			keep = keep && ok
		}
		if keep {
			matched = append(matched, in)
		}
	}

	offset := 0
	if tok := form.Get("NextToken"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		rest, ok := strings.CutPrefix(string(raw), "instances:")
		n, convErr := strconv.Atoi(rest)
		if err != nil || !ok || convErr != nil || n < 0 || n > len(matched) {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidParameterValue", "Invalid value for nextToken"}
		}
		offset = n
	}
	end := len(matched)
	if limit > 0 {
		end = min(offset+limit, len(matched))
	}
	out := &describeInstancesResponse{RequestID: reqID}
	out.ReservationSet.Items = []xmlReservation{}
	for _, in := range matched[offset:end] {
		x := xmlInstance{
			InstanceID: in.InstanceID, ImageID: in.ImageID,
			PrivateDNSName: in.PrivateDNSName, InstanceType: in.InstanceType,
			LaunchTime: in.LaunchTime.UTC().Format("2006-01-02T15:04:05.000Z"),
			SubnetID:   in.SubnetID, VpcID: in.VpcID,
			PrivateIPAddress: in.PrivateIPAddress, IPAddress: in.PublicIPAddress,
		}
		x.InstanceState.Code = stateCodes[in.State]
		x.InstanceState.Name = in.State
		keys := make([]string, 0, len(in.Tags))
		for k := range in.Tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			x.Tags = append(x.Tags, xmlTag{Key: k, Value: in.Tags[k]})
		}
		out.ReservationSet.Items = append(out.ReservationSet.Items,
			xmlReservation{ReservationID: in.ReservationID, OwnerID: s.account, Instances: []xmlInstance{x}})
	}
	if end < len(matched) {
		out.NextToken = base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "instances:%d", end))
	}
	return out, nil
}
