package metrics

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openhcp/kamaji/core/metrics/metricstest"
)

// A label value with a quote, a backslash or a newline is escaped as the text format wants.
func TestTextWriterEscapes(t *testing.T) {
	var b bytes.Buffer
	tw := newTextWriter(&b)
	f := gaugeFamily{"test_info", "A help with a \\ and a\nnewline.", []string{"name", "driver"}}
	tw.family(f)
	tw.sample(f, 1, `a"b`, "c\\d\ne")
	tw.sample(f, 1.5e9, "plain", "")
	if err := tw.flush(); err != nil {
		t.Fatal(err)
	}
	want := `# HELP test_info A help with a \\ and a\nnewline.
# TYPE test_info gauge
test_info{name="a\"b",driver="c\\d\ne"} 1
test_info{name="plain",driver=""} 1.5e+09
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	fams, err := metricstest.Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := fams.Value("test_info", map[string]string{"name": `a"b`, "driver": "c\\d\ne"}); !ok || v != 1 {
		t.Errorf("parsed back: %v %v (%v)", v, ok, fams)
	}
}

// Whatever a scraper accepts (Prometheus asks for OpenMetrics or protobuf first), the answer is
// the registry's families then the state's, in the text format, compressed only when asked.
func TestWithStateNegotiates(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_registry_gauge", Help: "From the registry."})
	g.Set(3)
	reg.MustRegister(g)
	srv := httptest.NewServer(WithState(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	defer srv.Close()

	for _, tc := range []struct{ accept, encoding string }{
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", "gzip"},
		{"", ""},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("Accept", tc.accept)
		if tc.encoding != "" {
			req.Header.Set("Accept-Encoding", tc.encoding) // set by hand: Go's client then leaves the body compressed
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := io.Reader(resp.Body)
		if got := resp.Header.Get("Content-Encoding"); got != tc.encoding {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q", tc.encoding, got)
		}
		if tc.encoding == "gzip" {
			if body, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		data, err := io.ReadAll(body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
			t.Errorf("Accept %q: Content-Type %q", tc.accept, ct)
		}
		fams, err := metricstest.Parse(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Accept %q: %v\n%s", tc.accept, err, data)
		}
		if v, _ := fams.Value("test_registry_gauge", nil); v != 3 {
			t.Errorf("Accept %q: the registry's gauge is %v\n%s", tc.accept, v, data)
		}
	}
}

// A registry that fails answers its error, with nothing after it.
func TestWithStateKeepsAFailure(t *testing.T) {
	failing := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "gathering failed", http.StatusInternalServerError)
	})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	WithState(failing).ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Encoding") != "" || strings.TrimSpace(rec.Body.String()) != "gathering failed" {
		t.Errorf("got %d %q %q", rec.Code, rec.Header().Get("Content-Encoding"), rec.Body.String())
	}
}
