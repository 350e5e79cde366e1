package addons

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func decodeOne(t *testing.T, raw string) *unstructured.Unstructured {
	t.Helper()
	objs, err := Decode("coredns", [][]byte{[]byte(raw)})
	if err != nil {
		t.Fatal(err)
	}
	return objs[0]
}

func TestDecodeLabelsAndDropsStatus(t *testing.T) {
	objs, err := Decode("coredns", [][]byte{
		[]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"coredns","namespace":"kube-system","labels":{"k8s-app":"kube-dns","kamaji.clastix.io/addon":"x"}},"status":{"replicas":3}}`),
		[]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: coredns\n  namespace: kube-system\ndata:\n  Corefile: |\n    .:53 {}\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	d, cm := objs[0], objs[1]
	if l := d.GetLabels(); l["k8s-app"] != "kube-dns" || l["kamaji.clastix.io/addon"] != "coredns" || l["app.kubernetes.io/managed-by"] != "kamaji" {
		t.Errorf("labels %v", l)
	}
	if _, ok := d.Object["status"]; ok {
		t.Error("status kept")
	}
	if v, _, _ := unstructured.NestedString(cm.Object, "data", "Corefile"); v != ".:53 {}\n" {
		t.Errorf("YAML object: %q", v)
	}
	if Key(d) != "apps/Deployment/kube-system/coredns" || Key(cm) != "/ConfigMap/kube-system/coredns" {
		t.Errorf("keys %s %s", Key(d), Key(cm))
	}
}

func TestDecodeRefuses(t *testing.T) {
	for name, raw := range map[string][]string{
		"no kind":   {`{"apiVersion":"v1","metadata":{"name":"a"}}`},
		"no name":   {`{"apiVersion":"v1","kind":"ConfigMap"}`},
		"garbage":   {"{not json"},
		"duplicate": {`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"b"}}`, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"b"}}`},
	} {
		var raws [][]byte
		for _, r := range raw {
			raws = append(raws, []byte(r))
		}
		if _, err := Decode("x", raws); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestIgnored(t *testing.T) {
	all, ptrs, err := Ignored(" /spec/replicas, /data/Corefile ,")
	if err != nil || all || !slices.Equal(ptrs, []string{"/spec/replicas", "/data/Corefile"}) {
		t.Errorf("got %v %v %v", all, ptrs, err)
	}
	if all, _, err := Ignored("*"); err != nil || !all {
		t.Errorf("* = %v %v", all, err)
	}
	for _, bad := range []string{"spec.replicas", "/"} {
		if _, _, err := Ignored(bad); err == nil || !strings.Contains(err.Error(), "kamaji.clastix.io/addon-ignore") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestStrip(t *testing.T) {
	d := decodeOne(t, `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"coredns","namespace":"kube-system","annotations":{"a/b":"x"}},
		"spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"coredns","image":"i","resources":{"limits":{"memory":"170Mi"}}},{"name":"side","image":"s"}],"tolerations":[{"key":"k"}]}}}}`)
	unmatched, err := Strip(d, []string{"/spec/replicas", "/spec/template/spec/containers/0/resources", "/spec/template/spec/containers/1", "/metadata/annotations/a~1b", "/spec/nothing"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(unmatched, []string{"/spec/nothing"}) {
		t.Errorf("unmatched %v", unmatched)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); found {
		t.Error("replicas still declared")
	}
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 || cs[0].(map[string]any)["resources"] != nil || cs[0].(map[string]any)["image"] != "i" {
		t.Errorf("containers %v", cs)
	}
	if len(d.GetAnnotations()) != 0 {
		t.Errorf("annotations %v", d.GetAnnotations())
	}
	for _, forbidden := range []string{"/metadata/name", "/kind", "/metadata/labels/kamaji.clastix.io~1addon", "/metadata/labels"} {
		if _, err := Strip(d, []string{forbidden}); err == nil {
			t.Errorf("%s could be ignored", forbidden)
		}
	}
}

func TestChecksumFollowsContent(t *testing.T) {
	a := decodeOne(t, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"1"}}`)
	b := decodeOne(t, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"2"}}`)
	ca, _ := Checksum([]*unstructured.Unstructured{a})
	ca2, _ := Checksum([]*unstructured.Unstructured{a.DeepCopy()})
	cb, _ := Checksum([]*unstructured.Unstructured{b})
	if ca != ca2 || ca == cb {
		t.Errorf("checksums %s %s %s", ca, ca2, cb)
	}
}
