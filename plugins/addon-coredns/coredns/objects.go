package coredns

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openhcp/kamaji/sdk"
)

// Labels every rendered object carries, so the core can select what it applied.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelAddon     = "kamaji.clastix.io/addon"
	managedBy      = "kamaji"
)

// objectMeta is the metadata of a rendered object: its labels plus the two the core selects on.
func objectMeta(name, namespace string, labels map[string]string) metav1.ObjectMeta {
	l := map[string]string{LabelManagedBy: managedBy, LabelAddon: AddonName}
	for k, v := range labels {
		l[k] = v
	}
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: l}
}

// encode marshals a typed object to JSON without its status (which the core never applies).
// encoding/json writes struct fields in declaration order and map keys sorted, so the same
// object always gives the same bytes.
func encode(obj any) ([]byte, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	return json.Marshal(m)
}

var versionRE = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)([-+][0-9A-Za-z.+-]*)?$`)

// parseVersion returns the minor of a Kubernetes 1.x version such as "v1.37.2".
func parseVersion(v string) (minor int, err error) {
	m := versionRE.FindStringSubmatch(v)
	if m == nil || m[1] != "1" {
		return 0, sdk.InvalidField("tenant.kubernetesVersion", "%q is not a Kubernetes version such as v1.37.2", v)
	}
	return strconv.Atoi(m[2])
}

// intParam reads an integer parameter: JSON numbers arrive as float64 through the transport,
// Go integers may come from an in-process caller.
func intParam(v any, field string, lowest int) (int32, error) {
	var f float64
	ok := true
	switch n := v.(type) {
	case float64:
		f = n
	case int:
		f = float64(n)
	case int32:
		f = float64(n)
	case int64:
		f = float64(n)
	default:
		ok = false
	}
	if !ok || f != math.Trunc(f) || f < float64(lowest) || f > math.MaxInt32 {
		return 0, sdk.InvalidField(field, "must be an integer of at least %d, not %s", lowest, describe(v))
	}
	return int32(f), nil
}

func describe(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}
