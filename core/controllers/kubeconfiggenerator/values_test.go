package kubeconfiggenerator

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestResolve(t *testing.T) {
	tcp := &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: "a1", Namespace: "team-a", Labels: map[string]string{"owner": "alice", "empty": ""}},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			Kubernetes:     kamajiv1alpha1.KubernetesSpec{Version: "v1.37.2"},
			NetworkProfile: kamajiv1alpha1.NetworkProfileSpec{Port: 6443, CertSANs: []string{"a.example.com", "b.example.com"}},
		},
	}
	def, err := definitionOf(tcp)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value kamajiv1alpha1.CompoundValue
		want  string
		err   string
	}{
		{kamajiv1alpha1.CompoundValue{StringValue: "static"}, "static", ""},
		{kamajiv1alpha1.CompoundValue{FromDefinition: "metadata.name"}, "a1", ""},
		{kamajiv1alpha1.CompoundValue{FromDefinition: ".metadata.namespace"}, "team-a", ""},
		{kamajiv1alpha1.CompoundValue{FromDefinition: "metadata.labels.owner"}, "alice", ""},
		{kamajiv1alpha1.CompoundValue{FromDefinition: "kind"}, "TenantControlPlane", ""},
		{kamajiv1alpha1.CompoundValue{FromDefinition: "spec.networkProfile.port"}, "6443", ""},
		{kamajiv1alpha1.CompoundValue{FromDefinition: "spec.networkProfile.certSANs.1"}, "b.example.com", ""},
		{kamajiv1alpha1.CompoundValue{FromDefinition: "spec.networkProfile.certSANs.2"}, "", `"spec.networkProfile.certSANs.2" does not exist`},
		{kamajiv1alpha1.CompoundValue{FromDefinition: "spec.nothing.here"}, "", `field "spec.nothing" does not exist`},
		{kamajiv1alpha1.CompoundValue{FromDefinition: "metadata.name.first"}, "", `(metadata.name is a string)`},
		{kamajiv1alpha1.CompoundValue{FromDefinition: "metadata.labels"}, "", "is an object, not a string"},
		{kamajiv1alpha1.CompoundValue{FromDefinition: "metadata.labels.empty"}, "", "is empty"},
		{kamajiv1alpha1.CompoundValue{FromDefinition: "metadata..name"}, "", "empty segment"},
		{kamajiv1alpha1.CompoundValue{}, "", "empty value"},
		{kamajiv1alpha1.CompoundValue{StringValue: "a", FromDefinition: "metadata.name"}, "", "exclusive"},
	} {
		got, err := def.resolve(c.value, "spec.user")
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%+v: got %q, %v; want %q", c.value, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "spec.user")):
			t.Errorf("%+v: got %q, %v; want an error about %q", c.value, got, err, c.err)
		}
	}
}

func TestIdentity(t *testing.T) {
	tcp := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "a1", Namespace: "team-a"}}
	gen := &kamajiv1alpha1.KubeconfigGenerator{Spec: kamajiv1alpha1.KubeconfigGeneratorSpec{
		User:   kamajiv1alpha1.CompoundValue{StringValue: "ci"},
		Groups: []kamajiv1alpha1.CompoundValue{{StringValue: "system:masters"}, {FromDefinition: "metadata.namespace"}},
	}}
	user, groups, err := identity(gen, tcp)
	if err != nil || user != "ci" || strings.Join(groups, ",") != "system:masters,team-a" {
		t.Fatalf("got %q %q %v; want ci, [system:masters team-a]", user, groups, err)
	}
	gen.Spec.Groups[1].FromDefinition = "spec.nothing"
	if _, _, err := identity(gen, tcp); err == nil || !strings.HasPrefix(err.Error(), "spec.groups[1].fromDefinition") {
		t.Fatalf("got %v; want an error naming spec.groups[1].fromDefinition", err)
	}
}
