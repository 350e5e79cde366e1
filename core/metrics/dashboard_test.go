package metrics

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

const (
	dashboardPath  = "../../deploy/grafana/kamaji-dashboard.json"
	operationsPath = "../../docs/operations.md"
)

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
)

// exported returns every series name the manager serves from this package, with its labels:
// a histogram's _bucket (with le), _sum and _count. It also checks each collector is
// registered on controller-runtime's registry, the one /metrics serves, before the state
// families.
func exported(t *testing.T) (series map[string][]string, base map[string][]string) {
	t.Helper()
	series, base = map[string][]string{}, map[string][]string{}
	for _, c := range Collectors() {
		var are prometheus.AlreadyRegisteredError
		if err := ctrlmetrics.Registry.Register(c); !errors.As(err, &are) {
			t.Fatalf("a collector is not registered on controller-runtime's registry (Register said %v)", err)
		}
		ch := make(chan *prometheus.Desc, 32)
		c.Describe(ch)
		close(ch)
		_, histogram := c.(*prometheus.HistogramVec)
		for d := range ch {
			s := d.String()
			m, l := descName.FindStringSubmatch(s), descLabels.FindStringSubmatch(s)
			if m == nil || l == nil {
				t.Fatalf("cannot read the descriptor %s", s)
			}
			var labels []string
			if l[1] != "" {
				labels = strings.Split(l[1], ",")
			}
			base[m[1]] = labels
			if histogram {
				series[m[1]+"_bucket"] = append(slices.Clone(labels), "le")
				series[m[1]+"_sum"], series[m[1]+"_count"] = labels, labels
			} else {
				series[m[1]] = labels
			}
		}
	}
	for _, f := range stateFamilies { // served by WithState after the registry's
		series[f.name], base[f.name] = f.labels, f.labels
	}
	return series, base
}

// queries returns every PromQL expression of the dashboard, and the metrics its variables
// read (label_values(metric, label)).
func queries(t *testing.T) (exprs, variableMetrics []string) {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardPath, err)
	}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if m := regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`).FindStringSubmatch(v.Definition); m != nil {
			variableMetrics = append(variableMetrics, m[1])
		}
	}
	if len(exprs) == 0 {
		t.Fatal("the dashboard has no query")
	}
	return exprs, variableMetrics
}

type panel struct {
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

var (
	selector   = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}`)
	matcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	grouping   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	braces     = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	keywords   = []string{"and", "or", "unless", "bool", "offset"}
)

// metricsOf returns the metric names an expression selects and checks its label matchers and
// groupings name labels those metrics have.
func metricsOf(t *testing.T, expr string, series map[string][]string) []string {
	t.Helper()
	var names []string
	for _, m := range selector.FindAllStringSubmatch(expr, -1) {
		names = append(names, m[1])
		for _, lm := range matcher.FindAllStringSubmatch(m[2], -1) {
			if labels, ok := series[m[1]]; ok && !slices.Contains(labels, lm[1]) {
				t.Errorf("%q matches label %q, which %s does not have (it has %v)", expr, lm[1], m[1], labels)
			}
		}
	}
	rest := braces.ReplaceAllString(expr, " ")
	var grouped []string
	for _, g := range grouping.FindAllStringSubmatch(rest, -1) {
		for _, l := range strings.Split(g[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				grouped = append(grouped, l)
			}
		}
	}
	rest = grouping.ReplaceAllString(rest, " ")
	for _, loc := range identifier.FindAllStringIndex(rest, -1) {
		id := rest[loc[0]:loc[1]]
		if loc[0] > 0 && (rest[loc[0]-1] == '$' || rest[loc[0]-1] == '.' || (rest[loc[0]-1] >= '0' && rest[loc[0]-1] <= '9')) {
			continue // a variable, or the exponent of a number
		}
		if next := strings.TrimLeft(rest[loc[1]:], " "); strings.HasPrefix(next, "(") || slices.Contains(keywords, id) {
			continue // a function or an operator
		}
		names = append(names, id)
	}
	for _, l := range grouped {
		found := false
		for _, n := range names {
			found = found || slices.Contains(series[n], l)
		}
		if !found {
			t.Errorf("%q groups by %q, a label none of %v has", expr, l, names)
		}
	}
	return names
}

// The dashboard parses, and queries only series the manager exports, with their labels; and
// it charts every metric of this package. Renaming a metric or a label without the dashboard
// fails here.
func TestDashboardQueriesOnlyExportedMetrics(t *testing.T) {
	series, base := exported(t)
	exprs, variables := queries(t)
	used := map[string]bool{}
	for _, expr := range exprs {
		names := metricsOf(t, expr, series)
		if len(names) == 0 {
			t.Errorf("%q selects no metric", expr)
		}
		for _, n := range names {
			if _, ok := series[n]; !ok {
				t.Errorf("%q queries %s, which the manager does not export", expr, n)
			}
			used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")] = true
		}
	}
	for _, v := range variables {
		if _, ok := series[v]; !ok {
			t.Errorf("a dashboard variable reads %s, which the manager does not export", v)
		}
	}
	for name := range base {
		if !used[name] {
			t.Errorf("the dashboard does not chart %s", name)
		}
	}
}

// docs/operations.md has a line for every metric naming each of its labels.
func TestOperationsDocListsEveryMetric(t *testing.T) {
	_, base := exported(t)
	raw, err := os.ReadFile(operationsPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	for name, labels := range base {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "`"+name+"`") })
		if i < 0 {
			t.Errorf("docs/operations.md does not list %s", name)
			continue
		}
		for _, l := range labels {
			if !strings.Contains(lines[i], "`"+l+"`") {
				t.Errorf("docs/operations.md's line for %s does not name its label %s: %s", name, l, lines[i])
			}
		}
	}
}
