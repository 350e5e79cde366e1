package konnectivity

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openhcp/kamaji/sdk/addon"
)

// objectMeta is the metadata of a rendered object: its labels plus the two the core selects on.
func objectMeta(name, namespace string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: addon.ObjectLabels(AddonName, labels)}
}
