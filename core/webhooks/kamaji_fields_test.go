package webhooks_test

// Integration tests of the TCP fields and rules Kamaji added (issue 14, item 2), against the
// real apiserver with our CRDs and webhooks.

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/controlplane"
)

// kamajiManifest is a TenantControlPlane as Kamaji's users write it.
const kamajiManifest = `
apiVersion: kamaji.clastix.io/v1alpha1
kind: TenantControlPlane
metadata:
  name: NAME
  namespace: default
spec:
  controlPlane:
    deployment:
      replicas: 2
    service:
      serviceType: ClusterIP
  kubernetes:
    version: VERSION
    kubelet:
      cgroupfs: systemd
  networkProfile:
    port: 6443
  addons:
    coreDNS: {}
    kubeProxy: {}
`

func kamajiTCP(t *testing.T, name, version string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(kamajiManifest), &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetName(name)
	if err := unstructured.SetNestedField(u.Object, version, "spec", "kubernetes", "version"); err != nil {
		t.Fatal(err)
	}
	return u
}

// Kamaji's schema accepts an empty version and leaves the verdict to its webhook: so does ours,
// and our webhook refuses it naming the field.
func TestEmptyVersionIsTheWebhooksVerdict(t *testing.T) {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := env.Client.Get(ctx(t), client.ObjectKey{Name: "tenantcontrolplanes.kamaji.clastix.io"}, crd); err != nil {
		t.Fatal(err)
	}
	schema := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["kubernetes"].Properties["version"]
	if schema.Type != "string" || schema.MinLength != nil || schema.Pattern != "" {
		t.Errorf("spec.kubernetes.version schema = %+v, want a plain string as Kamaji's", schema)
	}

	expectRejected(t, create(t, kamajiTCP(t, "kamaji-empty-version", "")),
		`spec.kubernetes.version: Required value`, "the tenant's Kubernetes version, such as v1.37.2, is required")
	mustCreate(t, kamajiTCP(t, "kamaji-empty-version", "v1.37.2"))
}

func TestAllocateLoadBalancerNodePortsNeedsALoadBalancer(t *testing.T) {
	const msg = "allocateLoadBalancerNodePorts is supported only with LoadBalancer service type"
	for _, svcType := range []kamajiv1alpha1.ServiceType{"ClusterIP", "NodePort"} {
		o := tcp("cel-alloc-lb-ports")
		o.Spec.ControlPlane.Service.ServiceType = svcType
		o.Spec.ControlPlane.Service.AllocateLoadBalancerNodePorts = ptr.To(false)
		expectRejected(t, create(t, o), "spec.controlPlane.service", msg)
	}
	o := tcp("cel-alloc-lb-ports")
	o.Spec.ControlPlane.Service.ServiceType = "LoadBalancer"
	o.Spec.ControlPlane.Service.AllocateLoadBalancerNodePorts = ptr.To(false)
	mustCreate(t, o)
	// Leaving LoadBalancer means dropping the field too.
	expectRejected(t, update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.ControlPlane.Service.ServiceType = "NodePort" }),
		"spec.controlPlane.service", msg)
	if err := update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) {
		x.Spec.ControlPlane.Service.ServiceType = "NodePort"
		x.Spec.ControlPlane.Service.AllocateLoadBalancerNodePorts = nil
	}); err != nil {
		t.Fatalf("NodePort without the field must be accepted: %v", err)
	}
}

// The fields Kamaji added in 2026 are kept by the apiserver (not pruned) and reach the
// control-plane Deployment, which the apiserver accepts.
func TestKamajiDeploymentFieldsReachTheDeployment(t *testing.T) {
	apiSC := &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), ReadOnlyRootFilesystem: ptr.To(true)}
	cmSC := &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	schedSC := &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	konnSC := &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534)}
	probes := &kamajiv1alpha1.ControlPlaneProbes{
		Liveness:          &kamajiv1alpha1.ProbeSpec{FailureThreshold: ptr.To[int32](6)},
		Readiness:         &kamajiv1alpha1.ProbeSpec{PeriodSeconds: ptr.To[int32](3)},
		StartupProbe:      &kamajiv1alpha1.ProbeSpec{FailureThreshold: ptr.To[int32](40)},
		APIServer:         &kamajiv1alpha1.ComponentProbes{Liveness: &kamajiv1alpha1.ProbeSpec{TimeoutSeconds: ptr.To[int32](5)}, Readiness: &kamajiv1alpha1.ProbeSpec{FailureThreshold: ptr.To[int32](5)}},
		ControllerManager: &kamajiv1alpha1.ComponentProbes{StartupProbe: &kamajiv1alpha1.ProbeSpec{FailureThreshold: ptr.To[int32](60)}},
		Scheduler:         &kamajiv1alpha1.ComponentProbes{Liveness: &kamajiv1alpha1.ProbeSpec{PeriodSeconds: ptr.To[int32](30)}},
	}

	o := tcp("kamaji-fields")
	dep := &o.Spec.ControlPlane.Deployment
	dep.ContainerSecurityContexts = &kamajiv1alpha1.ControlPlaneContainerSecurityContexts{APIServer: apiSC, ControllerManager: cmSC, Scheduler: schedSC}
	dep.Probes = probes
	dep.AutomountServiceAccountToken = ptr.To(false)
	o.Spec.Addons.Konnectivity = &kamajiv1alpha1.KonnectivitySpec{}
	o.Spec.Addons.Konnectivity.KonnectivityServerSpec.SecurityContext = konnSC
	mustCreate(t, o)

	got := &kamajiv1alpha1.TenantControlPlane{}
	if err := env.Client.Get(ctx(t), client.ObjectKeyFromObject(o), got); err != nil {
		t.Fatal(err)
	}
	gd := got.Spec.ControlPlane.Deployment
	if !equality.Semantic.DeepEqual(gd.ContainerSecurityContexts, dep.ContainerSecurityContexts) {
		t.Errorf("containerSecurityContexts stored as %+v", gd.ContainerSecurityContexts)
	}
	if !equality.Semantic.DeepEqual(gd.Probes, probes) {
		t.Errorf("probes stored as %+v", gd.Probes)
	}
	if gd.AutomountServiceAccountToken == nil || *gd.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken stored as %v", gd.AutomountServiceAccountToken)
	}
	if k := got.Spec.Addons.Konnectivity; k == nil || !equality.Semantic.DeepEqual(k.KonnectivityServerSpec.SecurityContext, konnSC) {
		t.Errorf("konnectivity server securityContext stored as %+v", k)
	}

	// The Deployment built from the stored TCP, created in the apiserver and read back.
	built, err := controlplane.Build(controlplane.Input{
		TCP:  got,
		Etcd: &controlplane.EtcdStorage{Servers: []string{"https://127.0.0.1:2379"}, Prefix: "/kamaji-fields", CertSecret: "kamaji-fields-datastore-certificate"},
		Secrets: controlplane.Secrets{
			CA: "c", APIServer: "a", APIServerKubeletClient: "k", FrontProxyCA: "f", FrontProxyClient: "fc",
			ServiceAccount: "sa", ControllerManagerKubeconfig: "cm", SchedulerKubeconfig: "s",
		},
		Labels: map[string]string{"kamaji.clastix.io/name": "kamaji-fields-built"},
	})
	if err != nil {
		t.Fatal(err)
	}
	built.Name += "-built" // not the controller's
	mustCreate(t, built)
	d := &appsv1.Deployment{}
	if err := env.Client.Get(ctx(t), client.ObjectKeyFromObject(built), d); err != nil {
		t.Fatal(err)
	}
	ps := d.Spec.Template.Spec
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("pod automountServiceAccountToken = %v", ps.AutomountServiceAccountToken)
	}
	containers := map[string]corev1.Container{}
	for _, c := range ps.Containers {
		containers[c.Name] = c
	}
	for name, want := range map[string]*corev1.SecurityContext{
		controlplane.APIServerContainer: apiSC, controlplane.ControllerManagerContainer: cmSC, controlplane.SchedulerContainer: schedSC,
	} {
		if got := containers[name].SecurityContext; !equality.Semantic.DeepEqual(got, want) {
			t.Errorf("%s securityContext = %+v, want %+v", name, got, want)
		}
	}
	type timing struct{ timeout, period, failure int32 }
	of := func(p *corev1.Probe) timing {
		if p == nil {
			return timing{}
		}
		return timing{p.TimeoutSeconds, p.PeriodSeconds, p.FailureThreshold}
	}
	api, cm, sched := containers[controlplane.APIServerContainer], containers[controlplane.ControllerManagerContainer], containers[controlplane.SchedulerContainer]
	for what, c := range map[string][2]timing{
		"kube-apiserver liveness":           {of(api.LivenessProbe), {5, 10, 6}},
		"kube-apiserver readiness":          {of(api.ReadinessProbe), {15, 3, 5}},
		"kube-apiserver startup":            {of(api.StartupProbe), {15, 1, 40}},
		"kube-controller-manager liveness":  {of(cm.LivenessProbe), {15, 10, 6}},
		"kube-controller-manager startup":   {of(cm.StartupProbe), {15, 1, 60}},
		"kube-scheduler liveness":           {of(sched.LivenessProbe), {15, 30, 6}},
		"kube-scheduler startup (global)":   {of(sched.StartupProbe), {15, 1, 40}},
		"kube-controller-manager readiness": {of(cm.ReadinessProbe), {}},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %+v, want %+v", what, c[0], c[1])
		}
	}
}
