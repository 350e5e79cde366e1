package output

import (
	"encoding/json"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// list is kubectl's "-o json" shape for several objects: a v1 List.
type list struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Items      []any  `json:"items"`
}

// TenantObjects prints the TCPs as a v1 List, managed fields left out (as kubectl does).
func TenantObjects(w io.Writer, f Format, tcps []kamajiv1alpha1.TenantControlPlane) error {
	items := make([]any, 0, len(tcps))
	for _, tcp := range sortedTenants(tcps) {
		tcp := tcp.DeepCopy()
		tcp.APIVersion, tcp.Kind = kamajiv1alpha1.GroupVersion.String(), "TenantControlPlane"
		tcp.ManagedFields = nil
		items = append(items, tcp)
	}
	return Objects(w, f, items)
}

// DataStoreObjects prints the DataStores as a v1 List.
func DataStoreObjects(w io.Writer, f Format, dss []kamajiv1alpha1.DataStore) error {
	items := make([]any, 0, len(dss))
	for i := range dss {
		ds := dss[i].DeepCopy()
		ds.APIVersion, ds.Kind = kamajiv1alpha1.GroupVersion.String(), "DataStore"
		ds.ManagedFields = nil
		items = append(items, ds)
	}
	return Objects(w, f, items)
}

// Objects prints items as a v1 List in JSON (indented) or YAML.
func Objects(w io.Writer, f Format, items []any) error {
	l := list{APIVersion: "v1", Kind: "List", Items: items}
	if l.Items == nil {
		l.Items = []any{}
	}
	switch f {
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "    ")
		return enc.Encode(l)
	case YAML:
		b, err := yaml.Marshal(l)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("objects cannot be printed as %q", f)
}
