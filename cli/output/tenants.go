package output

import (
	"fmt"
	"io"
	"sort"
	"time"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cli/status"
)

// TenantOptions tune the tenant table.
type TenantOptions struct {
	Wide          bool
	AllNamespaces bool // adds the NAMESPACE column
	Now           time.Time
}

// messageWidth bounds the MESSAGE column of the plain table; -o wide prints it whole.
const messageWidth = 120

// Tenants prints the tenant table, sorted by namespace and name.
func Tenants(w io.Writer, tcps []kamajiv1alpha1.TenantControlPlane, o TenantOptions) error {
	if len(tcps) == 0 {
		return nil
	}
	tcps = sortedTenants(tcps)
	headers := []string{"NAME", "STATUS", "VERSION", "ENDPOINT", "DATASTORE", "AGE"}
	if o.Wide {
		headers = append(headers, "REPLICAS", "KUBECONFIG", "USAGE")
	}
	headers = append(headers, "MESSAGE")
	if o.AllNamespaces {
		headers = append([]string{"NAMESPACE"}, headers...)
	}
	t := newTable(w, headers...)
	for i := range tcps {
		tcp := &tcps[i]
		msg := status.Summary(tcp)
		if !o.Wide {
			msg = Truncate(msg, messageWidth)
		}
		row := []string{tcp.Name, StateColumn(tcp), VersionColumn(tcp), orNone(tcp.Status.ControlPlaneEndpoint), orNone(DataStoreOf(tcp)), Age(tcp.CreationTimestamp.Time, o.Now)}
		if o.Wide {
			usage := ""
			if u := tcp.Status.Storage.Usage; u != nil {
				usage = Usage(u.Bytes, u.Keys)
			}
			row = append(row, ReplicasColumn(tcp), orNone(tcp.Status.KubeConfig.Admin.SecretName), orNone(usage))
		}
		row = append(row, msg)
		if o.AllNamespaces {
			row = append([]string{tcp.Namespace}, row...)
		}
		t.row(row...)
	}
	return t.flush()
}

func sortedTenants(in []kamajiv1alpha1.TenantControlPlane) []kamajiv1alpha1.TenantControlPlane {
	out := append([]kamajiv1alpha1.TenantControlPlane(nil), in...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// StateColumn is the version status, ",Paused" appended when the TCP is paused (kubectl's
// "Ready,SchedulingDisabled" style).
func StateColumn(tcp *kamajiv1alpha1.TenantControlPlane) string {
	s := string(status.State(tcp))
	if status.Paused(tcp) {
		s += ",Paused"
	}
	return s
}

// VersionColumn is the installed version, "installed->wanted" while they differ, the wanted
// version before anything is installed.
func VersionColumn(tcp *kamajiv1alpha1.TenantControlPlane) string {
	installed, wanted := tcp.Status.Kubernetes.Version.Version, tcp.Spec.Kubernetes.Version
	switch {
	case installed == "":
		return wanted
	case installed != wanted:
		return installed + "->" + wanted
	}
	return installed
}

// ReplicasColumn is "available/desired".
func ReplicasColumn(tcp *kamajiv1alpha1.TenantControlPlane) string {
	return fmt.Sprintf("%d/%d", tcp.Status.Kubernetes.Deployment.AvailableReplicas, status.Replicas(tcp))
}

// DataStoreOf is the DataStore the tenant uses: the one its status records, else its spec's.
func DataStoreOf(tcp *kamajiv1alpha1.TenantControlPlane) string {
	if n := tcp.Status.Storage.DataStoreName; n != "" {
		return n
	}
	return tcp.Spec.DataStore
}
