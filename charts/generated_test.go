package charts_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// What the charts install is what controller-gen generated from the code (core/config): the
// copies under files/ are refreshed by `make manifests` and checked by hack/check-generated.sh;
// these tests check the templates do not lose or change anything on the way.

func TestCRDsAreTheGeneratedOnes(t *testing.T) {
	out, err := render(t, "./kamaji-crds")
	if err != nil {
		t.Fatal(err)
	}
	rendered := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, d := range only(splitDocs(t, out), "CustomResourceDefinition") {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := sigsyaml.UnmarshalStrict(d.JSON, crd); err != nil {
			t.Fatal(err)
		}
		rendered[crd.Name] = crd
	}
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), "core", "config", "crd", "*.yaml"))
	if len(files) == 0 || len(rendered) != len(files) {
		t.Fatalf("%d CRDs rendered, %d generated", len(rendered), len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want := &apiextensionsv1.CustomResourceDefinition{}
		if err := sigsyaml.UnmarshalStrict(b, want); err != nil {
			t.Fatal(err)
		}
		got := rendered[want.Name]
		if got == nil {
			t.Errorf("CRD %s not rendered", want.Name)
			continue
		}
		if !reflect.DeepEqual(got.Spec, want.Spec) {
			t.Errorf("CRD %s: the rendered spec differs from %s", want.Name, f)
		}
		if got.Annotations["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s: not kept on uninstall (annotations %v)", want.Name, got.Annotations)
		}
	}
}

// generated reads the documents of a file under core/config.
func generated(t *testing.T, rel string) []doc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "core", "config", rel))
	if err != nil {
		t.Fatal(err)
	}
	return splitDocs(t, string(b))
}

func TestRBACIsTheGeneratedOne(t *testing.T) {
	var wantCluster, wantLeases []rbacv1.PolicyRule
	for _, d := range generated(t, "rbac/role.yaml") {
		var r rbacv1.ClusterRole // a Role has the same rules field
		if err := sigsyaml.Unmarshal(d.JSON, &r); err != nil {
			t.Fatal(err)
		}
		switch d.Kind {
		case "ClusterRole":
			wantCluster = r.Rules
		case "Role":
			wantLeases = r.Rules
		}
	}
	if len(wantCluster) == 0 || len(wantLeases) == 0 {
		t.Fatal("core/config/rbac/role.yaml: want a ClusterRole and a Role (the lease)")
	}
	webhookRule := func(r rbacv1.PolicyRule) bool { return slices.Contains(r.APIGroups, "admissionregistration.k8s.io") }
	for _, c := range []struct {
		name   string
		values []string
	}{{"self-managed certificates", []string{"digests"}}, {"cert-manager", []string{"digests", "cert-manager"}}} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{}
			for _, v := range c.values {
				args = append(args, "--values", filepath.Join("testdata", "values", v+".yaml"))
			}
			out, err := render(t, "./kamaji", args...)
			if err != nil {
				t.Fatal(err)
			}
			docs := splitDocs(t, out)
			var cr rbacv1.ClusterRole
			var role rbacv1.Role
			if crs, roles := only(docs, "ClusterRole"), only(docs, "Role"); len(crs) != 1 || len(roles) != 1 {
				t.Fatalf("%d ClusterRoles and %d Roles rendered, want one each", len(crs), len(roles))
			} else if err := sigsyaml.Unmarshal(crs[0].JSON, &cr); err != nil {
				t.Fatal(err)
			} else if err := sigsyaml.Unmarshal(roles[0].JSON, &role); err != nil {
				t.Fatal(err)
			}
			if role.Namespace != "kamaji-system" || !reflect.DeepEqual(role.Rules, wantLeases) {
				t.Errorf("Role %s/%s rules %+v, want the generated %+v in the release namespace", role.Namespace, role.Name, role.Rules, wantLeases)
			}
			var want []rbacv1.PolicyRule
			for _, r := range wantCluster {
				if webhookRule(r) {
					if c.name == "cert-manager" {
						continue // cert-manager's cainjector injects the CA
					}
					// Narrowed to the chart's own configurations.
					r.ResourceNames = []string{"kamaji-mutating-webhook-configuration", "kamaji-validating-webhook-configuration"}
				}
				want = append(want, r)
			}
			if !reflect.DeepEqual(cr.Rules, want) {
				t.Errorf("ClusterRole rules:\n%+v\nwant the generated ones:\n%+v", cr.Rules, want)
			}
			for _, r := range cr.Rules {
				// Activity Leases live beside TCPs, anywhere; they go with their TCP, and only
				// the leader election's, in the release namespace, is deleted by the manager.
				if slices.Contains(r.Resources, "leases") && slices.Contains(r.Verbs, "delete") {
					t.Error("leases can be deleted cluster-wide")
				}
			}
		})
	}
}

func TestWebhooksAreTheGeneratedOnes(t *testing.T) {
	var wantM []admissionv1.MutatingWebhook
	var wantV []admissionv1.ValidatingWebhook
	for _, d := range generated(t, "webhook/manifests.yaml") {
		switch d.Kind {
		case "MutatingWebhookConfiguration":
			var m admissionv1.MutatingWebhookConfiguration
			if err := sigsyaml.Unmarshal(d.JSON, &m); err != nil {
				t.Fatal(err)
			}
			wantM = m.Webhooks
		case "ValidatingWebhookConfiguration":
			var v admissionv1.ValidatingWebhookConfiguration
			if err := sigsyaml.Unmarshal(d.JSON, &v); err != nil {
				t.Fatal(err)
			}
			wantV = v.Webhooks
		}
	}
	// The chart points them at its Service in the release namespace.
	for i := range wantM {
		wantM[i].ClientConfig.Service.Name, wantM[i].ClientConfig.Service.Namespace = "kamaji-webhook-service", "kamaji-system"
	}
	for i := range wantV {
		wantV[i].ClientConfig.Service.Name, wantV[i].ClientConfig.Service.Namespace = "kamaji-webhook-service", "kamaji-system"
	}
	// With datastores, the release's own DataStore creations skip the webhook (the manager is
	// not running yet when Helm creates them).
	releaseCreations := []admissionv1.MatchCondition{{
		Name:       "not-created-by-this-release",
		Expression: "request.operation != 'CREATE' || !has(object.metadata.annotations) || !('meta.helm.sh/release-name' in object.metadata.annotations) || object.metadata.annotations['meta.helm.sh/release-name'] != 'kamaji'",
	}}
	for _, c := range []struct{ name, annotation string }{{"digests", ""}, {"cert-manager", "kamaji-system/kamaji-serving-cert"}, {"datastores", ""}} {
		t.Run(c.name, func(t *testing.T) {
			wantV := slices.Clone(wantV)
			if c.name == "datastores" {
				for i := range wantV {
					if slices.Contains(wantV[i].Rules[0].Resources, "datastores") {
						wantV[i].MatchConditions = releaseCreations
					}
				}
			}
			args := []string{"--values", "testdata/values/digests.yaml", "--values", filepath.Join("testdata", "values", c.name+".yaml")}
			out, err := render(t, "./kamaji", args...)
			if err != nil {
				t.Fatal(err)
			}
			docs := splitDocs(t, out)
			ms, vs := only(docs, "MutatingWebhookConfiguration"), only(docs, "ValidatingWebhookConfiguration")
			if len(ms) != 1 || len(vs) != 1 {
				t.Fatalf("%d mutating and %d validating configurations rendered", len(ms), len(vs))
			}
			var m admissionv1.MutatingWebhookConfiguration
			var v admissionv1.ValidatingWebhookConfiguration
			if err := sigsyaml.Unmarshal(ms[0].JSON, &m); err != nil {
				t.Fatal(err)
			}
			if err := sigsyaml.Unmarshal(vs[0].JSON, &v); err != nil {
				t.Fatal(err)
			}
			if m.Name != "kamaji-mutating-webhook-configuration" || v.Name != "kamaji-validating-webhook-configuration" {
				t.Errorf("configurations named %s and %s", m.Name, v.Name)
			}
			if !reflect.DeepEqual(m.Webhooks, wantM) || !reflect.DeepEqual(v.Webhooks, wantV) {
				t.Errorf("rendered webhooks differ from the generated ones:\n%+v\n%+v", m.Webhooks, v.Webhooks)
			}
			for _, a := range []map[string]string{m.Annotations, v.Annotations} {
				if a["cert-manager.io/inject-ca-from"] != c.annotation {
					t.Errorf("cert-manager.io/inject-ca-from=%q, want %q", a["cert-manager.io/inject-ca-from"], c.annotation)
				}
			}
		})
	}
}
