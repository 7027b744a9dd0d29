package stats

import "time"

// AllRoutes names the series that merges every route series.
const AllRoutes = "(all routes)"

// summarizeAll merges recs step by step into one series. Percentiles
// cannot be averaged, so the histograms are added before estimating them:
// that is why the gateway-wide figures are computed here rather than by
// a reader summing the per-route points.
func summarizeAll(recs map[string]*Recorder, end int64, window, step time.Duration) Series {
	secs := int64(window / time.Second)
	per := int64(step / time.Second)
	n := secs / per
	se := Series{Name: AllRoutes, Points: make([]Point, n)}
	list := make([]*Recorder, 0, len(recs))
	for _, r := range recs {
		list = append(list, r)
	}
	var total acc
	for i := int64(0); i < n; i++ {
		last := end - (n-1-i)*per
		var a acc
		for sec := last - per + 1; sec <= last; sec++ {
			for _, r := range list {
				var one acc
				r.read(sec, &one)
				a.add(&one)
			}
		}
		total.add(&a)
		se.Points[i] = a.point(last, per)
	}
	se.Totals = total.point(end, secs)
	return se
}
