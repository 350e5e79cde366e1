package kubeconfiggenerator

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// definition is a TCP as the generic map fromDefinition paths walk.
type definition map[string]any

// definitionOf converts the TCP, with its apiVersion and kind, to the map fromDefinition reads.
func definitionOf(tcp *kamajiv1alpha1.TenantControlPlane) (definition, error) {
	obj := tcp.DeepCopy()
	obj.APIVersion, obj.Kind = kamajiv1alpha1.GroupVersion.String(), "TenantControlPlane"
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// resolve returns the value a CompoundValue stands for; field names the value in errors
// ("spec.user", "spec.groups[1]").
func (d definition) resolve(v kamajiv1alpha1.CompoundValue, field string) (string, error) {
	switch {
	case v.StringValue != "" && v.FromDefinition != "":
		return "", fmt.Errorf("%s: stringValue and fromDefinition are exclusive", field)
	case v.FromDefinition != "":
		s, err := d.lookup(v.FromDefinition)
		if err != nil {
			return "", fmt.Errorf("%s.fromDefinition: %w", field, err)
		}
		return s, nil
	case v.StringValue != "":
		return v.StringValue, nil
	}
	return "", fmt.Errorf("%s: empty value", field)
}

// lookup follows a dot path ("metadata.name", "spec.networkProfile.certSANs.0": a number indexes
// a list) to a string, a number or a boolean. A missing field, a null, a list or an object is
// an error that names the path.
func (d definition) lookup(path string) (string, error) {
	p := strings.TrimPrefix(path, ".")
	if p == "" {
		return "", fmt.Errorf("empty path")
	}
	var cur any = map[string]any(d)
	walked := ""
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return "", fmt.Errorf("path %q has an empty segment", path)
		}
		switch node := cur.(type) {
		case map[string]any:
			next, ok := node[seg]
			if !ok {
				return "", fmt.Errorf("field %q does not exist in the TenantControlPlane", walked+seg)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(node) {
				return "", fmt.Errorf("field %q does not exist in the TenantControlPlane (%s has %d items)", walked+seg, strings.TrimSuffix(walked, "."), len(node))
			}
			cur = node[i]
		default:
			return "", fmt.Errorf("field %q does not exist in the TenantControlPlane (%s is %s)", walked+seg, strings.TrimSuffix(walked, "."), kindOf(cur))
		}
		walked += seg + "."
	}
	switch v := cur.(type) {
	case string:
		if v == "" {
			return "", fmt.Errorf("field %q is empty", p)
		}
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("field %q is %s, not a string, a number or a boolean", p, kindOf(cur))
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	}
	return fmt.Sprintf("a %T", v)
}
