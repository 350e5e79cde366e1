package exposure

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func gatewayTCP() *kamajiv1alpha1.TenantControlPlane {
	tcp := newTCP(kamajiv1alpha1.ServiceTypeClusterIP)
	tcp.Spec.ControlPlane.Gateway = &kamajiv1alpha1.GatewaySpec{
		Hostname: "t.example.com",
		GatewayParentRefs: []kamajiv1alpha1.GatewayParentReference{
			{Name: "gw", Namespace: ptr.To("gateways")},
			{Name: "other", SectionName: ptr.To("tls"), Port: ptr.To[int32](443)},
		},
		AdditionalMetadata: kamajiv1alpha1.AdditionalMetadata{Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "x"}},
	}
	return tcp
}

func TestTLSRoute(t *testing.T) {
	tcp := gatewayTCP()
	r := TLSRoute(tcp)
	if r.Name != "t" || r.Namespace != "ns" || r.APIVersion != "gateway.networking.k8s.io/v1" || r.Kind != "TLSRoute" {
		t.Errorf("meta %+v %+v", r.TypeMeta, r.ObjectMeta)
	}
	if r.Labels["team"] != "a" || r.Labels[kamajiv1alpha1.NameLabel] != "t" || r.Annotations["note"] != "x" {
		t.Errorf("metadata: labels %v annotations %v", r.Labels, r.Annotations)
	}
	if len(r.Spec.Hostnames) != 1 || r.Spec.Hostnames[0] != "t.example.com" {
		t.Errorf("hostnames %v", r.Spec.Hostnames)
	}
	p := r.Spec.ParentRefs
	if len(p) != 2 || p[0].Name != "gw" || *p[0].Namespace != "gateways" || p[0].SectionName != nil || p[0].Port != nil ||
		*p[1].SectionName != "tls" || *p[1].Port != 443 {
		t.Errorf("without konnectivity the parentRefs are the spec's: %+v", p)
	}
	b := r.Spec.Rules[0].BackendRefs
	if len(r.Spec.Rules) != 1 || len(b) != 1 || b[0].Name != "t" || *b[0].Port != 6443 || b[0].Kind != nil {
		t.Errorf("rules %+v", r.Spec.Rules)
	}
	if KonnectivityTLSRoute(tcp) != nil {
		t.Error("a konnectivity route without konnectivity")
	}
	tcp.Spec.ControlPlane.Gateway.Hostname = ""
	if h := TLSRoute(tcp).Spec.Hostnames; h[0] != "t.ns" {
		t.Errorf("default host name %v", h)
	}
}

// With konnectivity, Kamaji's second route: same Gateways and host name, the konnectivity
// listener and port; the apiserver route names its listener where the spec names none.
func TestKonnectivityTLSRoute(t *testing.T) {
	tcp := gatewayTCP()
	tcp.Spec.Addons.Konnectivity = &kamajiv1alpha1.KonnectivitySpec{}
	main, k := TLSRoute(tcp), KonnectivityTLSRoute(tcp)
	if p := main.Spec.ParentRefs; *p[0].SectionName != "kube-apiserver" || *p[1].SectionName != "tls" || *p[1].Port != 443 {
		t.Errorf("apiserver route parentRefs %+v", p)
	}
	if k.Name != "t-konnectivity" || k.Namespace != "ns" || k.Spec.Hostnames[0] != "t.example.com" {
		t.Errorf("konnectivity route %+v %v", k.ObjectMeta, k.Spec.Hostnames)
	}
	for _, p := range k.Spec.ParentRefs {
		if p.SectionName == nil || *p.SectionName != "konnectivity-server" || p.Port != nil {
			t.Errorf("konnectivity parentRef %+v: want sectionName konnectivity-server and no port", p)
		}
	}
	if k.Spec.ParentRefs[0].Name != "gw" || *k.Spec.ParentRefs[0].Namespace != "gateways" || k.Spec.ParentRefs[1].Name != "other" {
		t.Errorf("konnectivity parentRefs %+v", k.Spec.ParentRefs)
	}
	if b := k.Spec.Rules[0].BackendRefs[0]; b.Name != "t" || *b.Port != 8132 {
		t.Errorf("konnectivity backend %+v", b)
	}
	tcp.Spec.Addons.Konnectivity.KonnectivityServerSpec.Port = 9132
	if b := KonnectivityTLSRoute(tcp).Spec.Rules[0].BackendRefs[0]; *b.Port != 9132 {
		t.Errorf("konnectivity port %d", *b.Port)
	}
}

func TestTLSRouteAt(t *testing.T) {
	tcp := gatewayTCP()
	tcp.Spec.Addons.Konnectivity = &kamajiv1alpha1.KonnectivitySpec{}
	for _, version := range TLSRouteVersions {
		gvk := TLSRouteGK.WithVersion(version)
		u, err := TLSRouteAt(KonnectivityTLSRoute(tcp), gvk)
		if err != nil {
			t.Fatal(err)
		}
		if u.GetAPIVersion() != "gateway.networking.k8s.io/"+version || u.GetKind() != "TLSRoute" || u.GetName() != "t-konnectivity" {
			t.Errorf("%s: %v", version, u.Object)
		}
		hosts, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "hostnames")
		parents, _, _ := unstructured.NestedSlice(u.Object, "spec", "parentRefs")
		rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
		if len(hosts) != 1 || len(parents) != 2 || parents[0].(map[string]any)["sectionName"] != "konnectivity-server" || len(rules) != 1 {
			t.Errorf("%s: spec %v", version, u.Object["spec"])
		}
		if _, found := u.Object["status"]; found {
			t.Errorf("%s: status declared", version)
		}
	}
	if _, err := TLSRouteAt(TLSRoute(tcp), TLSRouteGK.WithVersion("v1alpha3")); err == nil {
		t.Error("a version the core does not write")
	}
}

func TestServedTLSRouteVersion(t *testing.T) {
	mapper := func(versions ...string) meta.RESTMapper {
		var gvs []schema.GroupVersion
		for _, v := range versions {
			gvs = append(gvs, schema.GroupVersion{Group: TLSRouteGK.Group, Version: v})
		}
		m := meta.NewDefaultRESTMapper(gvs)
		for _, gv := range gvs {
			m.Add(gv.WithKind("TLSRoute"), meta.RESTScopeNamespace)
		}
		return m
	}
	for _, c := range []struct {
		served []string
		want   string
	}{
		{[]string{"v1"}, "v1"},                         // standard channel, Gateway API v1.5+
		{[]string{"v1alpha2", "v1alpha3", "v1"}, "v1"}, // experimental channel
		{[]string{"v1alpha2"}, "v1alpha2"},             // older CRDs
		{[]string{"v1alpha3"}, ""},                     // nothing the core writes
		{nil, ""},                                      // no Gateway API
	} {
		gvk, err := ServedTLSRouteVersion(mapper(c.served...))
		switch {
		case c.want == "" && !meta.IsNoMatchError(err):
			t.Errorf("%v: want a no-match error, got %v %v", c.served, gvk, err)
		case c.want != "" && (err != nil || gvk.Version != c.want || gvk.Kind != "TLSRoute"):
			t.Errorf("%v: got %v %v, want %s", c.served, gvk, err, c.want)
		}
	}
}
