// Package addons prepares the objects an addon plugin rendered for applying in the tenant
// cluster, and finds the ones to prune.
//
// Each addon is applied with its own field manager (FieldManager), every object labelled
// app.kubernetes.io/managed-by=kamaji and kamaji.clastix.io/addon=<addon>. A new render replaces
// the previous one: objects it no longer has are deleted (by label), and fields it no longer
// sets are dropped by server-side apply.
//
// Users customise an addon without the core fighting them (docs/addons.md):
//   - a field the render does not set is theirs: server-side apply keeps what another field
//     manager (kubectl, a GitOps tool) sets there;
//   - a field the render sets is released with the annotation kamaji.clastix.io/addon-ignore on
//     the object, a comma-separated list of JSON pointers (RFC 6901) into the rendered object,
//     such as "/spec/replicas" or "/data/Corefile": the core stops declaring them, and the value
//     the user set stays;
//   - "*" hands the whole object over: it is neither applied nor pruned any more.
package addons

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// FieldManager is the field manager of an addon's objects: one per addon, so that pruning one
// addon's fields never touches another's.
func FieldManager(addon string) string { return "kamaji-addon-" + addon }

// IgnoreAll hands an object over to its users.
const IgnoreAll = "*"

// Decode turns a render into objects to apply: each entry is one JSON or YAML object with
// apiVersion, kind and metadata.name, at most once; the status is dropped and the core's labels
// are set (they win over the plugin's).
func Decode(addon string, raw [][]byte) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(raw))
	seen := map[string]bool{}
	for i, b := range raw {
		js := b
		if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
			var err error
			if js, err = yaml.YAMLToJSON(b); err != nil {
				return nil, fmt.Errorf("%s: object %d is neither JSON nor YAML: %w", addon, i, err)
			}
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("%s: object %d: %w", addon, i, err)
		}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("%s: object %d has no apiVersion, kind or metadata.name", addon, i)
		}
		id := Key(u)
		if seen[id] {
			return nil, fmt.Errorf("%s: %s is rendered twice", addon, id)
		}
		seen[id] = true
		delete(u.Object, "status")
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[kamajiv1alpha1.ManagedByLabel] = kamajiv1alpha1.ManagedByValue
		labels[kamajiv1alpha1.AddonLabel] = addon
		u.SetLabels(labels)
		out = append(out, u)
	}
	return out, nil
}

// Key identifies an object for pruning: group, kind, namespace and name (not the version, so a
// new API version of the same object is the same object).
func Key(u interface {
	GroupVersionKind() schema.GroupVersionKind
	GetNamespace() string
	GetName() string
}) string {
	gvk := u.GroupVersionKind()
	return gvk.Group + "/" + gvk.Kind + "/" + u.GetNamespace() + "/" + u.GetName()
}

// Ignored parses the kamaji.clastix.io/addon-ignore annotation: all is true for "*"; pointers
// are the JSON pointers listed. A malformed pointer is an error naming it.
func Ignored(annotation string) (all bool, pointers []string, err error) {
	for _, p := range strings.Split(annotation, ",") {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
			continue
		case p == IgnoreAll:
			all = true
		case !strings.HasPrefix(p, "/") || p == "/":
			return false, nil, fmt.Errorf("%s: %q is not a JSON pointer to a field, such as /spec/replicas", kamajiv1alpha1.AddonIgnoreAnnotation, p)
		default:
			pointers = append(pointers, p)
		}
	}
	return all, pointers, nil
}

// Strip removes the fields at pointers from obj, so that the core stops declaring them. A
// pointer into metadata.name, namespace, apiVersion or kind, or into the core's labels, is
// refused. It returns the pointers that matched nothing in obj (the render changed, or a typo).
func Strip(obj *unstructured.Unstructured, pointers []string) (unmatched []string, err error) {
	for _, p := range pointers {
		tokens := splitPointer(p)
		switch {
		case len(tokens) == 1 && (tokens[0] == "apiVersion" || tokens[0] == "kind" || tokens[0] == "metadata"):
			return nil, fmt.Errorf("%s: %s cannot be ignored", kamajiv1alpha1.AddonIgnoreAnnotation, p)
		case len(tokens) >= 2 && tokens[0] == "metadata" && (tokens[1] == "name" || tokens[1] == "namespace"):
			return nil, fmt.Errorf("%s: %s cannot be ignored", kamajiv1alpha1.AddonIgnoreAnnotation, p)
		case len(tokens) >= 2 && tokens[0] == "metadata" && tokens[1] == "labels" &&
			(len(tokens) == 2 || tokens[2] == kamajiv1alpha1.ManagedByLabel || tokens[2] == kamajiv1alpha1.AddonLabel):
			return nil, fmt.Errorf("%s: %s cannot be ignored: the core selects its objects by these labels", kamajiv1alpha1.AddonIgnoreAnnotation, p)
		}
		if !remove(obj.Object, tokens) {
			unmatched = append(unmatched, p)
		}
	}
	return unmatched, nil
}

// splitPointer decodes an RFC 6901 pointer into its reference tokens.
func splitPointer(p string) []string {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, t := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return parts
}

// remove deletes the value at tokens under node. An array element is cut out of its array,
// which the caller's container then holds anew.
func remove(node any, tokens []string) bool {
	switch n := node.(type) {
	case map[string]any:
		child, ok := n[tokens[0]]
		if !ok {
			return false
		}
		if len(tokens) == 1 {
			delete(n, tokens[0])
			return true
		}
		if arr, ok := child.([]any); ok && len(tokens) == 2 {
			i, err := strconv.Atoi(tokens[1])
			if err != nil || i < 0 || i >= len(arr) {
				return false
			}
			n[tokens[0]] = append(arr[:i:i], arr[i+1:]...)
			return true
		}
		return remove(child, tokens[1:])
	case []any:
		i, err := strconv.Atoi(tokens[0])
		if err != nil || i < 0 || i >= len(n) || len(tokens) == 1 {
			return false // an element of a nested array: cut by its parent map only
		}
		return remove(n[i], tokens[1:])
	}
	return false
}

// Checksum identifies what is applied for an addon: its objects as they are declared.
func Checksum(objs []*unstructured.Unstructured) (string, error) {
	list := make([]any, len(objs))
	for i, o := range objs {
		list[i] = o.Object
	}
	b, err := json.Marshal(list)
	if err != nil {
		return "", err
	}
	return checksum(b), nil
}
