package output

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cli/status"
)

// DataStoreOptions tune the DataStore table.
type DataStoreOptions struct {
	Wide bool
	Now  time.Time
}

// DataStores prints the DataStore table, sorted by name: driver, readiness, the plugin that
// serves it (name and version from status.plugin), how many tenants use it (status.usedBy)
// and what they store (status.usage, when the driver reports usage).
func DataStores(w io.Writer, dss []kamajiv1alpha1.DataStore, o DataStoreOptions) error {
	if len(dss) == 0 {
		return nil
	}
	dss = append([]kamajiv1alpha1.DataStore(nil), dss...)
	sort.Slice(dss, func(i, j int) bool { return dss[i].Name < dss[j].Name })
	headers := []string{"NAME", "DRIVER", "READY", "PLUGIN", "TENANTS", "USAGE", "AGE"}
	if o.Wide {
		headers = append(headers, "ENDPOINTS", "PROTOCOL", "USAGE UPDATED", "USED BY")
	}
	headers = append(headers, "MESSAGE")
	t := newTable(w, headers...)
	for i := range dss {
		ds := &dss[i]
		usage, updated := DataStoreUsage(ds), ""
		if u := ds.Status.Usage; u != nil && !u.LastUpdate.IsZero() {
			updated = Age(u.LastUpdate.Time, o.Now) + " ago"
		}
		msg := dataStoreSummary(ds)
		if !o.Wide {
			msg = Truncate(msg, messageWidth)
		}
		row := []string{ds.Name, ds.Spec.Driver, dataStoreReady(ds), orNone(PluginColumn(ds)), fmt.Sprint(len(ds.Status.UsedBy)), orNone(usage), Age(ds.CreationTimestamp.Time, o.Now)}
		if o.Wide {
			protocol := ""
			if p := ds.Status.Plugin; p != nil && p.Protocol != 0 {
				protocol = fmt.Sprint(p.Protocol)
			}
			row = append(row, strings.Join(ds.Spec.Endpoints, ","), orNone(protocol), orNone(updated), orNone(strings.Join(ds.Status.UsedBy, ",")))
		}
		t.row(append(row, msg)...)
	}
	return t.flush()
}

// PluginColumn is "name@version" of the plugin serving the DataStore.
func PluginColumn(ds *kamajiv1alpha1.DataStore) string {
	p := ds.Status.Plugin
	if p == nil || p.Name == "" {
		return ""
	}
	if p.Version == "" {
		return p.Name
	}
	return p.Name + "@" + p.Version
}

// DataStoreUsage is the tenants' sum: "1.5 MiB, 420 keys (3 tenants)", "" when not reported.
func DataStoreUsage(ds *kamajiv1alpha1.DataStore) string {
	u := ds.Status.Usage
	if u == nil {
		return ""
	}
	s := Usage(u.Bytes, u.Keys)
	if s == "" {
		return ""
	}
	return fmt.Sprintf("%s (%d tenants)", s, u.Tenants)
}

func dataStoreReady(ds *kamajiv1alpha1.DataStore) string {
	for _, c := range ds.Status.Conditions {
		if c.Type == "Ready" {
			return string(c.Status)
		}
	}
	return "Unknown"
}

// dataStoreSummary lists the DataStore's False conditions, the specific ones (PluginReady,
// ConfigValid) before the Ready summary.
func dataStoreSummary(ds *kamajiv1alpha1.DataStore) string {
	var specific, ready []string
	for _, c := range ds.Status.Conditions {
		if c.Status != metav1.ConditionFalse {
			continue
		}
		if c.Type == "Ready" {
			ready = append(ready, status.Describe(c))
		} else {
			specific = append(specific, status.Describe(c))
		}
	}
	if len(specific) == 0 {
		specific = ready
	}
	return strings.Join(specific, "; ")
}
