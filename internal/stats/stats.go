// Package stats keeps recent request statistics per route and per upstream
// for the admin API's /api/v1/stats: request rate, error rate and latency
// percentiles over the last 15 minutes at 1-second resolution.
//
// Each tracked series owns a ring of per-second slots. A slot holds three
// counters and a small log-scale latency histogram, all atomics, so
// recording takes no lock and allocates nothing: the writer finds the slot
// by second modulo ring size, claims it if it still holds an older second
// (a compare-and-swap on its stamp), then adds. Readers check each slot's
// stamp and ignore slots that hold another second.
//
// Memory is bounded: a series costs SeriesBytes (about 100 KiB), series are
// created when a route or upstream is first seen, and at most MaxRoutes
// route series and MaxUpstreams upstream series are tracked; names beyond
// the cap are aggregated into the series named Other.
package stats

import (
	"math"
	"math/bits"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

const (
	// Slots is the ring length in seconds: the 15-minute window plus a
	// margin so the oldest second shown is never the one being reset.
	Slots = 960
	// MaxWindow is the longest window a query may ask for.
	MaxWindow = 15 * time.Minute
	// Buckets is the number of latency histogram buckets per slot.
	Buckets = 24
	// MaxRoutes and MaxUpstreams cap the tracked series of each kind.
	MaxRoutes    = 256
	MaxUpstreams = 256
	// Other names the series that aggregates names beyond the caps.
	Other = "(other)"
)

// bucketBase is the upper bound of bucket 0; bucket i holds latencies up
// to bucketBase<<i, and the last bucket everything longer. With 24
// buckets the bounds run from 50µs to about 3.5 minutes, doubling.
const bucketBase = 50 * time.Microsecond

// resetting marks a slot whose counters are being zeroed for a new second.
const resetting = math.MinInt64

// slot is one second of one series.
type slot struct {
	sec      atomic.Int64 // the unix second the counters belong to
	requests atomic.Uint32
	errors   atomic.Uint32
	lat      [Buckets]atomic.Uint32
}

// SeriesBytes is the memory one tracked series holds.
const SeriesBytes = int(unsafe.Sizeof(slot{})) * Slots

// Recorder is one series (a route or an upstream). Record is safe for
// concurrent use and allocation-free.
type Recorder struct {
	name  string
	slots [Slots]slot
}

// Name is the series name.
func (r *Recorder) Name() string { return r.name }

// bucketOf maps a latency to its histogram bucket.
func bucketOf(d time.Duration) int {
	if d <= bucketBase {
		return 0
	}
	// Bucket i covers (base<<(i-1), base<<i].
	q := uint64((d - 1) / bucketBase)
	b := 64 - bits.LeadingZeros64(q)
	if b >= Buckets {
		return Buckets - 1
	}
	return b
}

// bucketUpper is the upper bound of bucket i (the last is open; its bound
// is reported as twice the previous one).
func bucketUpper(i int) time.Duration { return bucketBase << i }

// Record counts one request that ended in unix second sec and took d;
// isError marks it as failed. A sample for a second older than what the
// slot already holds (15 minutes late) is dropped.
func (r *Recorder) Record(sec int64, d time.Duration, isError bool) {
	if r == nil {
		return
	}
	s := &r.slots[uint64(sec)%Slots]
	for spins := 0; ; spins++ {
		cur := s.sec.Load()
		if cur == sec {
			break
		}
		if cur == resetting {
			// Another writer is zeroing this slot: 27 stores away.
			if spins > 100 {
				runtime.Gosched()
			}
			continue
		}
		if cur > sec {
			return
		}
		if s.sec.CompareAndSwap(cur, resetting) {
			s.requests.Store(0)
			s.errors.Store(0)
			for i := range s.lat {
				s.lat[i].Store(0)
			}
			s.sec.Store(sec)
			break
		}
	}
	s.requests.Add(1)
	if isError {
		s.errors.Add(1)
	}
	s.lat[bucketOf(d)].Add(1)
}

// Ring holds every tracked series.
type Ring struct {
	now func() time.Time

	mu        sync.Mutex // serializes creating series, never taken by Record
	routes    atomic.Pointer[map[string]*Recorder]
	upstreams atomic.Pointer[map[string]*Recorder]
}

// New returns an empty ring; now is its clock (nil: time.Now).
func New(now func() time.Time) *Ring {
	if now == nil {
		now = time.Now
	}
	r := &Ring{now: now}
	empty1, empty2 := map[string]*Recorder{}, map[string]*Recorder{}
	r.routes.Store(&empty1)
	r.upstreams.Store(&empty2)
	return r
}

// Now is the ring's clock.
func (r *Ring) Now() time.Time { return r.now() }

// Route returns the recorder of route name, creating it (or returning the
// Other series past MaxRoutes). Call it when a snapshot is compiled, not
// per request; it is nevertheless lock-free when the series exists.
func (r *Ring) Route(name string) *Recorder { return r.series(&r.routes, name, MaxRoutes) }

// Upstream returns the recorder of upstream name, like Route.
func (r *Ring) Upstream(name string) *Recorder { return r.series(&r.upstreams, name, MaxUpstreams) }

func (r *Ring) series(p *atomic.Pointer[map[string]*Recorder], name string, max int) *Recorder {
	if rec := (*p.Load())[name]; rec != nil {
		return rec
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := *p.Load()
	if rec := m[name]; rec != nil {
		return rec
	}
	key := name
	if len(m) >= max {
		key = Other
		if rec := m[key]; rec != nil {
			return rec
		}
	}
	rec := &Recorder{name: key}
	next := make(map[string]*Recorder, len(m)+1)
	for k, v := range m {
		next[k] = v
	}
	next[key] = rec
	p.Store(&next)
	return rec
}

// Point is one step of a series.
type Point struct {
	// Time is the unix second the step ends with (inclusive).
	Time     int64   `json:"t"`
	Requests uint64  `json:"requests"`
	Errors   uint64  `json:"errors"`
	RPS      float64 `json:"rps"`
	// ErrorRate is errors/requests (0 without requests).
	ErrorRate float64 `json:"error_rate"`
	// Latency percentiles in milliseconds, estimated from the histogram
	// (0 without requests).
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
}

// Series is one route's or upstream's statistics over a window.
type Series struct {
	Name   string  `json:"name"`
	Totals Point   `json:"totals"`
	Points []Point `json:"points"`
}

// Result is a query's answer.
type Result struct {
	// End is the last second covered (the current, partial, second).
	End       int64    `json:"end"`
	Window    string   `json:"window"`
	Step      string   `json:"step"`
	Routes    []Series `json:"routes"`
	Upstreams []Series `json:"upstreams"`
	// All merges every route series: the gateway as a whole.
	All Series `json:"all"`
}

// Steps are the step sizes a query may use.
var Steps = []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, time.Minute}

// Query summarizes every series over the window ending with the current
// second, in steps of step. window must be a positive multiple of step no
// longer than MaxWindow, and step one of Steps; the caller validates.
func (r *Ring) Query(window, step time.Duration) Result {
	end := r.now().Unix()
	res := Result{End: end, Window: window.String(), Step: step.String()}
	routes := *r.routes.Load()
	res.Routes = query(routes, end, window, step)
	res.All = summarizeAll(routes, end, window, step)
	res.Upstreams = query(*r.upstreams.Load(), end, window, step)
	return res
}

func query(m map[string]*Recorder, end int64, window, step time.Duration) []Series {
	out := make([]Series, 0, len(m))
	for _, rec := range m {
		out = append(out, rec.summarize(end, window, step))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// acc accumulates slots.
type acc struct {
	requests, errors uint64
	lat              [Buckets]uint64
}

func (a *acc) add(b *acc) {
	a.requests += b.requests
	a.errors += b.errors
	for i := range a.lat {
		a.lat[i] += b.lat[i]
	}
}

// read adds the slot for second sec, if the slot holds it.
func (r *Recorder) read(sec int64, a *acc) {
	s := &r.slots[uint64(sec)%Slots]
	if s.sec.Load() != sec {
		return
	}
	a.requests += uint64(s.requests.Load())
	a.errors += uint64(s.errors.Load())
	for i := range s.lat {
		a.lat[i] += uint64(s.lat[i].Load())
	}
	// A reset racing this read would show as a changed stamp: the slot
	// then belongs to a newer second and counts for nothing here.
	if s.sec.Load() != sec {
		var zero acc
		*a = zero
	}
}

func (r *Recorder) summarize(end int64, window, step time.Duration) Series {
	secs := int64(window / time.Second)
	per := int64(step / time.Second)
	n := secs / per
	se := Series{Name: r.name, Points: make([]Point, n)}
	var total acc
	for i := int64(0); i < n; i++ {
		last := end - (n-1-i)*per
		var a acc
		for sec := last - per + 1; sec <= last; sec++ {
			var one acc
			r.read(sec, &one)
			a.add(&one)
		}
		total.add(&a)
		se.Points[i] = a.point(last, per)
	}
	se.Totals = total.point(end, secs)
	return se
}

func (a *acc) point(t, secs int64) Point {
	p := Point{Time: t, Requests: a.requests, Errors: a.errors}
	if a.requests == 0 {
		return p
	}
	p.RPS = float64(a.requests) / float64(secs)
	p.ErrorRate = float64(a.errors) / float64(a.requests)
	p.P50 = a.percentile(0.50)
	p.P90 = a.percentile(0.90)
	p.P99 = a.percentile(0.99)
	return p
}

// percentile estimates the q-quantile in milliseconds, interpolating
// linearly inside the bucket it falls in.
func (a *acc) percentile(q float64) float64 {
	var total uint64
	for _, c := range a.lat {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen float64
	for i, c := range a.lat {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			lo := time.Duration(0)
			if i > 0 {
				lo = bucketUpper(i - 1)
			}
			hi := bucketUpper(i)
			frac := (rank - seen) / float64(c)
			v := float64(lo) + frac*float64(hi-lo)
			return math.Round(v/float64(time.Millisecond)*1000) / 1000
		}
		seen += float64(c)
	}
	return float64(bucketUpper(Buckets-1)) / float64(time.Millisecond)
}

// ValidStep reports whether step is one of Steps.
func ValidStep(step time.Duration) bool {
	for _, s := range Steps {
		if s == step {
			return true
		}
	}
	return false
}
