package addon

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/openhcp/kamaji/sdk"
)

// Labels the core selects the objects of an addon by: every rendered object must carry them
// (see ObjectLabels), or the core can neither prune it nor watch it for drift.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelAddon     = "kamaji.clastix.io/addon"
	ManagedBy      = "kamaji"
)

// ObjectLabels returns extra plus the two labels the core selects on for addon.
func ObjectLabels(addon string, extra map[string]string) map[string]string {
	l := map[string]string{LabelManagedBy: ManagedBy, LabelAddon: addon}
	for k, v := range extra {
		l[k] = v
	}
	return l
}

// EncodeObject marshals a typed Kubernetes object to the JSON Render returns, without its
// status (the core never applies one). encoding/json writes struct fields in declaration order
// and map keys sorted, so the same object always gives the same bytes: the core compares
// renders by checksum.
func EncodeObject(obj any) ([]byte, error) {
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

// KubernetesMinor returns the minor of a Kubernetes 1.x version such as "v1.37.2" (the
// tenant's kubernetesVersion); anything else is an invalid tenant.kubernetesVersion.
func KubernetesMinor(version string) (int, error) {
	m := versionRE.FindStringSubmatch(version)
	if m == nil || m[1] != "1" {
		return 0, sdk.InvalidField("tenant.kubernetesVersion", "%q is not a Kubernetes version such as v1.37.2", version)
	}
	return strconv.Atoi(m[2])
}

// IntParam reads an integer parameter of at least lowest: JSON numbers arrive as float64
// through the transport, Go integers may come from an in-process caller. Anything else, a
// fraction or a value out of range is an invalid field.
func IntParam(v any, field string, lowest int) (int32, error) {
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
		return 0, sdk.InvalidField(field, "must be an integer of at least %d, not %s", lowest, DescribeValue(v))
	}
	return int32(f), nil
}

// DescribeValue renders a parameter value for an error message, as the JSON it came as.
func DescribeValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

// GoMemLimitPercent is the share of a container's memory limit a Go program in it is told it
// may use (GOMEMLIMIT, in bytes): near the limit its collector works harder instead of the
// kernel killing the container at it. The rest is headroom for what the Go runtime does not
// count (the mapped binary, the kernel's socket buffers). The core uses it for the control
// plane's own components; an addon whose sidecar is a Go program can use it too.
const GoMemLimitPercent = 90

// GoMemLimit is GOMEMLIMIT, in bytes, for a Go program in a container whose memory limit is
// limit bytes: GoMemLimitPercent of it, rounded down; false when limit is not positive (no
// limit: the program keeps Go's default, no soft limit).
func GoMemLimit(limit int64) (int64, bool) {
	if limit <= 0 {
		return 0, false
	}
	if limit > math.MaxInt64/GoMemLimitPercent {
		return limit / 100 * GoMemLimitPercent, true
	}
	return limit * GoMemLimitPercent / 100, true
}
