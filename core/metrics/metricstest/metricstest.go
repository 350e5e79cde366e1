// Package metricstest reads metrics as a scraper sees them, for tests: from a registry, or
// from a /metrics endpoint in the text format.
package metricstest

import (
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are scraped metric families by name.
type Families map[string]*dto.MetricFamily

// Gather reads every family of g.
func Gather(g prometheus.Gatherer) (Families, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	out := Families{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out, nil
}

// Scrape GETs url (a /metrics endpoint) and parses the text format.
func Scrape(url string) (Families, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return Parse(resp.Body)
}

// Parse reads metrics in the text format (a /metrics answer fetched some other way).
func Parse(r io.Reader) (Families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// Sum adds up the values (as Value reads them) of every series of family name whose labels
// include labels, such as a counter over all its results.
func (f Families) Sum(name string, labels map[string]string) float64 {
	var sum float64
	for _, ls := range f.Series(name, labels) {
		v, _ := f.Value(name, ls)
		sum += v
	}
	return sum
}

// Value is the value of the series of family name whose labels include labels: a gauge's or
// counter's value, a histogram's sample count. found is false when there is no such series.
func (f Families) Value(name string, labels map[string]string) (value float64, found bool) {
	mf, ok := f[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if !Matches(m, labels) {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// Histogram is the sample count and sum of the histogram series of family name whose labels are
// exactly labels (as Series gives them); zeros when there is none.
func (f Families) Histogram(name string, labels map[string]string) (count, sum float64) {
	for _, m := range f[name].GetMetric() {
		if Matches(m, labels) && len(m.GetLabel()) == len(labels) && m.Histogram != nil {
			return float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()
		}
	}
	return 0, 0
}

// Series lists the label sets of family name's series whose labels include labels.
func (f Families) Series(name string, labels map[string]string) []map[string]string {
	var out []map[string]string
	for _, m := range f[name].GetMetric() {
		if Matches(m, labels) {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			out = append(out, ls)
		}
	}
	return out
}

// Matches tells whether the series' labels include labels.
func Matches(m *dto.Metric, labels map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range labels {
		if have[k] != v {
			return false
		}
	}
	return true
}
