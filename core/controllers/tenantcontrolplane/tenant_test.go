package tenantcontrolplane_test

// Integration tests of what the core does inside a tenant cluster: a real tenant kube-apiserver
// (run from the TCP's own Deployment by testenv.StartTenantAPIServer, storing into the real
// multi-tenant etcd with the tenant's client certificate and prefix), reached by the manager
// through the tenant client's Dial seam; the addon plugins built as they ship.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	tcpcontroller "github.com/openhcp/kamaji/core/controllers/tenantcontrolplane"
	"github.com/openhcp/kamaji/core/controlplane"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/manager"
	"github.com/openhcp/kamaji/core/tenantpki"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// tenantConfig is a rest.Config for the tenant as the given admin kubeconfig key describes it,
// dialing the test's apiserver (TLS still checked against the kubeconfig's host).
func tenantConfig(t *testing.T, name, key, dial string) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.RESTConfigFromKubeConfig(getSecret(ctxT(t), t, name+"-admin-kubeconfig").Data[key])
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(cfg.Host)
	cfg.Host, cfg.TLSClientConfig.ServerName = dial, u.Hostname()
	return cfg
}

func clientFor(t *testing.T, cfg *rest.Config) client.Client {
	t.Helper()
	c, err := client.New(cfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func condition(tcp *kamajiv1alpha1.TenantControlPlane, typ string) *metav1.Condition {
	return meta.FindStatusCondition(tcp.Status.Conditions, typ)
}

func waitCondition(t *testing.T, name, typ string, status metav1.ConditionStatus, reason string) *kamajiv1alpha1.TenantControlPlane {
	t.Helper()
	var tcp *kamajiv1alpha1.TenantControlPlane
	eventually(t, fmt.Sprintf("%s %s=%s %s", name, typ, status, reason), func(ctx context.Context) (bool, error) {
		tcp = &kamajiv1alpha1.TenantControlPlane{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, tcp); err != nil {
			return false, err
		}
		c := condition(tcp, typ)
		return c != nil && c.Status == status && (reason == "" || c.Reason == reason) && c.ObservedGeneration == tcp.Generation,
			fmt.Errorf("%s: %+v", typ, c)
	})
	return tcp
}

// gone waits until obj no longer exists in c.
func gone(t *testing.T, c client.Client, what string, obj client.Object) {
	t.Helper()
	eventually(t, what+" to be gone", func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		return apierrors.IsNotFound(err), err
	})
}

func exists(t *testing.T, c client.Client, what string, obj client.Object) {
	t.Helper()
	eventually(t, what, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		return err == nil, err
	})
}

func managers(obj client.Object) []string {
	var out []string
	for _, m := range obj.GetManagedFields() {
		out = append(out, m.Manager)
	}
	return out
}

func TestTenantCluster(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	if err := env.Client.Create(ctxT(t), dataStoreFor("tenants", etcd)); err != nil {
		t.Fatal(err)
	}
	const name = "tenant-b"
	tcp := newTCP(name, testenv.KubeVersion)
	tcp.Spec.DataStore = "tenants"
	tcp.Spec.ControlPlane.Deployment.Replicas = ptr.To[int32](1)
	tcp.Spec.Kubernetes.Kubelet.CGroupFS = "cgroupfs"
	tcp.Spec.Kubernetes.Kubelet.ConfigurationJSONPatches = []kamajiv1alpha1.JSONPatch{
		{Op: "add", Path: "/maxPods", Value: &apiextensionsv1.JSON{Raw: []byte("64")}},
	}
	tcp.Spec.Addons = kamajiv1alpha1.AddonsSpec{
		CoreDNS:      &kamajiv1alpha1.AddonSpec{},
		KubeProxy:    &kamajiv1alpha1.AddonSpec{ImageRepository: "mirror.example"},
		Konnectivity: &kamajiv1alpha1.KonnectivitySpec{},
	}
	// Kamaji's 2026 fields, through the real reconcile into the Deployment.
	konnectivitySC := &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), AllowPrivilegeEscalation: ptr.To(false)}
	apiServerSC := &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	tcp.Spec.Addons.Konnectivity.KonnectivityServerSpec.SecurityContext = konnectivitySC
	tcp.Spec.ControlPlane.Deployment.ContainerSecurityContexts = &kamajiv1alpha1.ControlPlaneContainerSecurityContexts{APIServer: apiServerSC}
	tcp.Spec.ControlPlane.Deployment.AutomountServiceAccountToken = ptr.To(false)
	tcp.Spec.ControlPlane.Deployment.Probes = &kamajiv1alpha1.ControlPlaneProbes{
		Liveness:  &kamajiv1alpha1.ProbeSpec{FailureThreshold: ptr.To[int32](9)},
		Scheduler: &kamajiv1alpha1.ComponentProbes{Liveness: &kamajiv1alpha1.ProbeSpec{FailureThreshold: ptr.To[int32](4)}},
	}
	if err := env.Client.Create(ctxT(t), tcp); err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: "default", Name: name}

	// The Deployment carries the addons' additions once they are rendered.
	eventually(t, "the Deployment with konnectivity's sidecar and egress selector", func(ctx context.Context) (bool, error) {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, d); err != nil {
			return false, err
		}
		args := strings.Join(d.Spec.Template.Spec.Containers[0].Args, " ")
		return len(d.Spec.Template.Spec.Containers) == 4 && strings.Contains(args, "--egress-selector-config-file="), fmt.Errorf("containers %d", len(d.Spec.Template.Spec.Containers))
	})

	t.Run("the control plane carries konnectivity: sidecar, Secrets, files, Service port, checksum", func(t *testing.T) {
		ctx := ctxT(t)
		dep := getDeployment(ctx, t, name)
		pod := dep.Spec.Template.Spec
		if pod.Containers[3].Name != "konnectivity-server" {
			t.Errorf("containers %v", pod.Containers)
		}
		if sc := pod.Containers[3].SecurityContext; !equality.Semantic.DeepEqual(sc, konnectivitySC) {
			t.Errorf("konnectivity-server securityContext = %+v, want spec.addons.konnectivity.server.securityContext", sc)
		}
		if sc := pod.Containers[0].SecurityContext; !equality.Semantic.DeepEqual(sc, apiServerSC) {
			t.Errorf("kube-apiserver securityContext = %+v, want containerSecurityContexts.apiServer", sc)
		}
		if pod.Containers[1].SecurityContext != nil || pod.Containers[2].SecurityContext != nil {
			t.Errorf("controller-manager and scheduler got a securityContext: %+v %+v", pod.Containers[1].SecurityContext, pod.Containers[2].SecurityContext)
		}
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Errorf("automountServiceAccountToken = %v", pod.AutomountServiceAccountToken)
		}
		if f := [3]int32{pod.Containers[0].LivenessProbe.FailureThreshold, pod.Containers[1].LivenessProbe.FailureThreshold, pod.Containers[2].LivenessProbe.FailureThreshold}; f != [3]int32{9, 9, 4} {
			t.Errorf("liveness failureThresholds (apiserver, controller-manager, scheduler) = %v, want [9 9 4]", f)
		}
		var egressMount *corev1.VolumeMount
		for i, m := range pod.Containers[0].VolumeMounts {
			if m.MountPath == "/etc/kubernetes/konnectivity/egress-selector-configuration.yaml" {
				egressMount = &pod.Containers[0].VolumeMounts[i]
			}
		}
		if egressMount == nil || egressMount.Name != "addon-files" || !egressMount.ReadOnly {
			t.Fatalf("kube-apiserver mounts %+v", pod.Containers[0].VolumeMounts)
		}
		cm := &corev1.ConfigMap{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name + "-addon-files"}, cm); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(cm.Data[egressMount.SubPath], "kind: EgressSelectorConfiguration") || len(cm.OwnerReferences) != 1 {
			t.Errorf("addon-files %+v", cm)
		}
		cert := certOf(t, getSecret(ctx, t, name+"-konnectivity-certificate"), tenantpki.KeyKonnectivityCert)
		verifyChain(t, cert, certOf(t, getSecret(ctx, t, name+"-ca"), tenantpki.KeyCACert), 0)
		if cert.Subject.CommonName != "system:konnectivity-server" {
			t.Errorf("konnectivity CN %q", cert.Subject.CommonName)
		}
		kc, err := clientcmd.Load(getSecret(ctx, t, name+"-konnectivity-kubeconfig").Data[kubeconfig.KeyKonnectivity])
		if err != nil || kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster].Server != "https://127.0.0.1:6443" {
			t.Errorf("konnectivity kubeconfig %v %+v", err, kc)
		}
		svc := &corev1.Service{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, svc); err != nil {
			t.Fatal(err)
		}
		var port *corev1.ServicePort
		for i := range svc.Spec.Ports {
			if svc.Spec.Ports[i].Name == "konnectivity-server" {
				port = &svc.Spec.Ports[i]
			}
		}
		if port == nil || port.Port != 8132 || !slices.Contains(managers(svc), "kamaji-addon-konnectivity") {
			t.Errorf("service ports %+v managers %v", svc.Spec.Ports, managers(svc))
		}
		// The konnectivity Secrets are in the pod template's checksum: a renewal rolls the pods.
		before := dep.Spec.Template.Annotations[controlplane.SecretsChecksumAnnotation]
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s := getSecret(ctx, t, name+"-konnectivity-certificate")
			s.Annotations = map[string]string{kamajiv1alpha1.RotateCertificatesAnnotation: "now"}
			return env.Client.Update(ctx, s)
		})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "a new konnectivity certificate and pod template checksum", func(ctx context.Context) (bool, error) {
			c := certOf(t, getSecret(ctx, t, name+"-konnectivity-certificate"), tenantpki.KeyKonnectivityCert)
			return c.SerialNumber.Cmp(cert.SerialNumber) != 0 && getDeployment(ctx, t, name).Spec.Template.Annotations[controlplane.SecretsChecksumAnnotation] != before, nil
		})
	})

	// The tenant's own kube-apiserver, from its Deployment; the manager reaches it through the
	// seam, as the public endpoint of the kubeconfig is a ClusterIP nothing routes to here.
	api, err := testenv.StartTenantAPIServer(ctxT(t), env.Client, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Stop)
	superAdmin := tenantConfig(t, name, kubeconfig.KeySuperAdmin, api.URL)
	server := "https://" + getTCP(ctxT(t), t, name).Status.ControlPlaneEndpoint
	tenantURLs.Store(server, api.URL)
	tc := clientFor(t, superAdmin)
	rollOut(t, name)

	t.Run("TenantConfigured and AddonsReady once the tenant answers", func(t *testing.T) {
		tcp := waitCondition(t, name, kamajiv1alpha1.ConditionTenantConfigured, metav1.ConditionTrue, "KubeadmPhasesApplied")
		tcp = waitCondition(t, name, kamajiv1alpha1.ConditionAddonsReady, metav1.ConditionTrue, "AddonsApplied")
		if versionStatus(tcp) != kamajiv1alpha1.VersionReady {
			t.Errorf("version status %s", versionStatus(tcp))
		}
		a := tcp.Status.Addons
		if !a.CoreDNS.Enabled || a.CoreDNS.Checksum == "" || a.CoreDNS.LastUpdate.IsZero() || !a.KubeProxy.Enabled || !a.Konnectivity.Enabled ||
			a.Konnectivity.Agent.Checksum == "" || a.Konnectivity.Certificate.SecretName != name+"-konnectivity-certificate" ||
			a.Konnectivity.Kubeconfig.SecretName != name+"-konnectivity-kubeconfig" || a.Konnectivity.ConfigMap.Name != name+"-addon-files" {
			t.Errorf("addons status %+v", a)
		}
		// Kamaji's status.addons.konnectivity.{sa, clusterrolebinding, agent.mode, service}.
		k := a.Konnectivity
		if k.ServiceAccount.Name != "konnectivity-agent" || k.ServiceAccount.Namespace != "kube-system" || k.ServiceAccount.LastUpdate.IsZero() {
			t.Errorf("konnectivity sa %+v", k.ServiceAccount)
		}
		if k.ClusterRoleBinding.Name != "system:konnectivity-server" || k.ClusterRoleBinding.LastUpdate.IsZero() {
			t.Errorf("konnectivity clusterrolebinding %+v", k.ClusterRoleBinding)
		}
		if k.Agent.Name != "konnectivity-agent" || k.Agent.Namespace != "kube-system" || k.Agent.Mode != kamajiv1alpha1.KonnectivityAgentModeDaemonSet {
			t.Errorf("konnectivity agent %+v", k.Agent)
		}
		if k.Service == nil || k.Service.Name != name || k.Service.Namespace != "default" || k.Service.Port != 8132 {
			t.Errorf("konnectivity service %+v", k.Service)
		}
		if tcp.Status.KubeadmConfig.ConfigmapName != "kubeadm-config" || tcp.Status.KubeadmConfig.Checksum == "" || tcp.Status.KubeadmPhase.BootstrapToken.Checksum == "" {
			t.Errorf("kubeadm status %+v %+v", tcp.Status.KubeadmConfig, tcp.Status.KubeadmPhase)
		}
		if !tenants.Active(key) || len(tenants.Watching(key)) == 0 {
			t.Errorf("tenant client active %v, watching %v", tenants.Active(key), tenants.Watching(key))
		}
	})

	t.Run("kubeadm phases: kubeadm-config, kubelet-config, RBAC", func(t *testing.T) {
		ctx := ctxT(t)
		cm := &corev1.ConfigMap{}
		if err := tc.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "kubeadm-config"}, cm); err != nil {
			t.Fatal(err)
		}
		var cc map[string]any
		if err := yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc); err != nil {
			t.Fatal(err)
		}
		if cc["kind"] != "ClusterConfiguration" || cc["controlPlaneEndpoint"] != strings.TrimPrefix(server, "https://") || cc["kubernetesVersion"] != testenv.KubeVersion {
			t.Errorf("ClusterConfiguration %v", cc)
		}
		if err := tc.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "kubelet-config"}, cm); err != nil {
			t.Fatal(err)
		}
		var kl kubeletv1beta1.KubeletConfiguration
		if err := yaml.UnmarshalStrict([]byte(cm.Data["kubelet"]), &kl); err != nil {
			t.Fatal(err)
		}
		if kl.CgroupDriver != "cgroupfs" || !slices.Equal(kl.ClusterDNS, []string{"10.96.0.10"}) || kl.ClusterDomain != "cluster.local" || kl.MaxPods != 64 {
			t.Errorf("kubelet configuration: driver %q DNS %v domain %q maxPods %d", kl.CgroupDriver, kl.ClusterDNS, kl.ClusterDomain, kl.MaxPods)
		}
		for _, b := range []struct{ name, role, subject string }{
			{"kubeadm:get-nodes", "kubeadm:get-nodes", "system:bootstrappers:kubeadm:default-node-token"},
			{"kubeadm:kubelet-bootstrap", "system:node-bootstrapper", "system:bootstrappers:kubeadm:default-node-token"},
			{"kubeadm:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", "system:bootstrappers:kubeadm:default-node-token"},
			{"kubeadm:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "system:nodes"},
			{"kubeadm:cluster-admins", "cluster-admin", "kubeadm:cluster-admins"},
			{"system:kube-apiserver-to-kubelet", "system:kube-apiserver-to-kubelet", "kube-apiserver-kubelet-client"},
		} {
			crb := &rbacv1.ClusterRoleBinding{}
			if err := tc.Get(ctx, client.ObjectKey{Name: b.name}, crb); err != nil {
				t.Errorf("%s: %v", b.name, err)
				continue
			}
			if crb.RoleRef.Name != b.role || crb.Subjects[0].Name != b.subject {
				t.Errorf("%s: %+v", b.name, crb)
			}
		}
		for _, rb := range []string{"kubeadm:kubelet-config", "kubeadm:nodes-kubeadm-config"} {
			if err := tc.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: rb}, &rbacv1.RoleBinding{}); err != nil {
				t.Errorf("RoleBinding %s: %v", rb, err)
			}
		}
		// The bindings work: admin.conf (kubeadm:cluster-admins, no system:masters) is cluster-admin.
		admin := clientFor(t, tenantConfig(t, name, kubeconfig.KeyAdmin, api.URL))
		if err := admin.List(ctx, &corev1.NodeList{}); err != nil {
			t.Errorf("admin.conf through kubeadm:cluster-admins: %v", err)
		}
	})

	t.Run("cluster-info carries the endpoint and the CA, and anonymous users read it", func(t *testing.T) {
		ctx := ctxT(t)
		// As kubeadm's token discovery does: no credentials, no discovery, one GET.
		anon, err := rest.HTTPClientFor(&rest.Config{TLSClientConfig: rest.TLSClientConfig{CAData: superAdmin.CAData, ServerName: superAdmin.ServerName}})
		if err != nil {
			t.Fatal(err)
		}
		get := func(path string) (int, []byte) {
			resp, err := anon.Get(api.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, b
		}
		code, body := get("/api/v1/namespaces/kube-public/configmaps/cluster-info")
		cm := &corev1.ConfigMap{}
		if code != 200 || json.Unmarshal(body, cm) != nil {
			t.Fatalf("anonymous read of cluster-info: %d %s", code, body)
		}
		kc, err := clientcmd.Load([]byte(cm.Data["kubeconfig"]))
		if err != nil {
			t.Fatal(err)
		}
		c := kc.Clusters[""]
		ca := getSecret(ctx, t, name+"-ca").Data[tenantpki.KeyCACert]
		if c == nil || c.Server != server || string(c.CertificateAuthorityData) != string(ca) {
			t.Errorf("cluster-info cluster %+v", c)
		}
		if code, _ := get("/api/v1/namespaces/kube-system/configmaps/kubeadm-config"); code != 403 {
			t.Errorf("anonymous users must read cluster-info only: kubeadm-config answered %d", code)
		}
	})

	t.Run("the addons' objects, labelled, one field manager each", func(t *testing.T) {
		ctx := ctxT(t)
		for _, o := range []struct {
			obj   client.Object
			addon string
		}{
			{&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}}, "coredns"},
			{&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns"}}, "coredns"},
			{&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}}, "coredns"},
			{&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy"}}, "kube-proxy"},
			{&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:node-proxier"}}, "kube-proxy"},
			{&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "konnectivity-agent"}}, "konnectivity"},
			{&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "system:konnectivity-server"}}, "konnectivity"},
		} {
			if err := tc.Get(ctx, client.ObjectKeyFromObject(o.obj), o.obj); err != nil {
				t.Errorf("%T %s: %v", o.obj, o.obj.GetName(), err)
				continue
			}
			if o.obj.GetLabels()[kamajiv1alpha1.AddonLabel] != o.addon || !slices.Contains(managers(o.obj), "kamaji-addon-"+o.addon) {
				t.Errorf("%T %s: labels %v managers %v", o.obj, o.obj.GetName(), o.obj.GetLabels(), managers(o.obj))
			}
		}
		svc := &corev1.Service{}
		if err := tc.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "kube-dns"}, svc); err != nil || svc.Spec.ClusterIP != "10.96.0.10" {
			t.Errorf("kube-dns %v %s", err, svc.Spec.ClusterIP)
		}
		ds := &appsv1.DaemonSet{}
		if err := tc.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "kube-proxy"}, ds); err != nil || !strings.HasPrefix(ds.Spec.Template.Spec.Containers[0].Image, "mirror.example/kube-proxy:") {
			t.Errorf("kube-proxy image override: %v %s", err, ds.Spec.Template.Spec.Containers[0].Image)
		}
		ka := &appsv1.DaemonSet{}
		if err := tc.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "konnectivity-agent"}, ka); err != nil ||
			!slices.Contains(ka.Spec.Template.Spec.Containers[0].Args, "--proxy-server-host="+strings.Split(strings.TrimPrefix(server, "https://"), ":")[0]) {
			t.Errorf("konnectivity agent %v %v", err, ka.Spec.Template.Spec.Containers[0].Args)
		}
	})

	t.Run("a deleted CoreDNS Deployment comes back, a changed field is set back", func(t *testing.T) {
		ctx := ctxT(t)
		d := &appsv1.Deployment{}
		if err := tc.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "coredns"}, d); err != nil {
			t.Fatal(err)
		}
		uid := d.UID
		if err := tc.Delete(ctx, d); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a new CoreDNS Deployment", func(ctx context.Context) (bool, error) {
			err := tc.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "coredns"}, d)
			return err == nil && d.UID != uid, err
		})
		// The manager may still be applying the new Deployment: retried on conflicts.
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := tc.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "coredns"}, d); err != nil {
				return err
			}
			d.Spec.Replicas = ptr.To[int32](7)
			return tc.Update(ctx, d)
		}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the replicas set back to the render's", func(ctx context.Context) (bool, error) {
			err := tc.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "coredns"}, d)
			return err == nil && ptr.Deref(d.Spec.Replicas, 0) == 2, fmt.Errorf("replicas %v, %v", d.Spec.Replicas, err)
		})
	})

	t.Run("user customisations survive reconciles", func(t *testing.T) {
		ctx := ctxT(t)
		// A field the render sets, released with the annotation in the same write as the value;
		// and a field the render does not set, kept by server-side apply.
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}}
		patch := `{"metadata":{"annotations":{"kamaji.clastix.io/addon-ignore":"/spec/replicas","example.com/owner":"team-dns"}},"spec":{"replicas":3,"minReadySeconds":5}}`
		if err := tc.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte(patch)), client.FieldOwner("kubectl-patch")); err != nil {
			t.Fatal(err)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}}
		corefile := ".:53 {\n    errors\n    forward . 192.0.2.53\n}\n"
		cmPatch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{"kamaji.clastix.io/addon-ignore": "/data/Corefile"}},
			"data": map[string]string{"Corefile": corefile}})
		if err := tc.Patch(ctx, cm, client.RawPatch(types.MergePatchType, cmPatch), client.FieldOwner("kubectl-patch")); err != nil {
			t.Fatal(err)
		}
		// The whole kube-proxy ConfigMap handed over.
		kp := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy"}}
		kpPatch := `{"metadata":{"annotations":{"kamaji.clastix.io/addon-ignore":"*"}},"data":{"config.conf":"mine"}}`
		if err := tc.Patch(ctx, kp, client.RawPatch(types.MergePatchType, []byte(kpPatch)), client.FieldOwner("kubectl-patch")); err != nil {
			t.Fatal(err)
		}
		before := getTCP(ctx, t, name).Status.Addons.CoreDNS.Checksum
		// The annotations change what the core declares: its checksum follows.
		eventually(t, "the coredns checksum to follow the customisation", func(ctx context.Context) (bool, error) {
			return getTCP(ctx, t, name).Status.Addons.CoreDNS.Checksum != before, nil
		})
		// Force more passes over both addons: delete an object of each and wait for its return.
		for _, o := range []client.Object{
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns"}},
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy"}},
		} {
			if err := tc.Delete(ctx, o); err != nil {
				t.Fatal(err)
			}
			uid := o.GetUID()
			eventually(t, o.GetName()+" to come back", func(ctx context.Context) (bool, error) {
				err := tc.Get(ctx, client.ObjectKeyFromObject(o), o)
				return err == nil && o.GetUID() != uid, err
			})
		}
		if err := tc.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			t.Fatal(err)
		}
		if ptr.Deref(d.Spec.Replicas, 0) != 3 || d.Spec.MinReadySeconds != 5 || d.Annotations["example.com/owner"] != "team-dns" {
			t.Errorf("coredns customisation lost: replicas %v minReadySeconds %d annotations %v", d.Spec.Replicas, d.Spec.MinReadySeconds, d.Annotations)
		}
		if !slices.Contains(managers(d), "kamaji-addon-coredns") || d.Labels[kamajiv1alpha1.AddonLabel] != "coredns" {
			t.Errorf("the rest of the Deployment is still the addon's: %v %v", managers(d), d.Labels)
		}
		if err := tc.Get(ctx, client.ObjectKeyFromObject(cm), cm); err != nil || cm.Data["Corefile"] != corefile {
			t.Errorf("Corefile customisation lost: %v %q", err, cm.Data["Corefile"])
		}
		if err := tc.Get(ctx, client.ObjectKeyFromObject(kp), kp); err != nil || kp.Data["config.conf"] != "mine" || kp.Data["kubeconfig.conf"] == "" {
			t.Errorf("handed-over kube-proxy ConfigMap changed: %v %v", err, kp.Data)
		}
		// Dropping the annotation gives the field back to the core.
		if err := tc.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"kamaji.clastix.io/addon-ignore":null}}}`))); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the replicas back under the core", func(ctx context.Context) (bool, error) {
			err := tc.Get(ctx, client.ObjectKeyFromObject(d), d)
			return err == nil && ptr.Deref(d.Spec.Replicas, 0) == 2, fmt.Errorf("replicas %v, %v", d.Spec.Replicas, err)
		})
		// A malformed customisation is a condition naming it.
		if err := tc.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"kamaji.clastix.io/addon-ignore":"spec.replicas"}}}`))); err != nil {
			t.Fatal(err)
		}
		tcp := waitCondition(t, name, kamajiv1alpha1.ConditionAddonsReady, metav1.ConditionFalse, "AddonCustomizationInvalid")
		if c := condition(tcp, kamajiv1alpha1.ConditionAddonsReady); !strings.Contains(c.Message, "spec.replicas") || !strings.Contains(c.Message, "kube-system/coredns") {
			t.Errorf("message %q", c.Message)
		}
		if err := tc.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"kamaji.clastix.io/addon-ignore":null}}}`))); err != nil {
			t.Fatal(err)
		}
		waitCondition(t, name, kamajiv1alpha1.ConditionAddonsReady, metav1.ConditionTrue, "AddonsApplied")
	})

	t.Run("a new render prunes what it no longer has: the agent moves to a Deployment", func(t *testing.T) {
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Spec.Addons.Konnectivity.KonnectivityAgentSpec.Mode = kamajiv1alpha1.KonnectivityAgentModeDeployment
			x.Spec.Addons.Konnectivity.KonnectivityAgentSpec.Replicas = ptr.To[int32](1)
		})
		exists(t, tc, "the konnectivity-agent Deployment", &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "konnectivity-agent"}})
		gone(t, tc, "the konnectivity-agent DaemonSet", &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "konnectivity-agent"}})
		eventually(t, "status.addons.konnectivity.agent.mode Deployment", func(ctx context.Context) (bool, error) {
			m := getTCP(ctx, t, name).Status.Addons.Konnectivity.Agent.Mode
			return m == kamajiv1alpha1.KonnectivityAgentModeDeployment, fmt.Errorf("mode %q", m)
		})
	})

	t.Run("kubelet-config follows the spec; a bad patch is a condition", func(t *testing.T) {
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Spec.Kubernetes.Kubelet.ConfigurationJSONPatches = []kamajiv1alpha1.JSONPatch{{Op: "replace", Path: "/nope/x", Value: &apiextensionsv1.JSON{Raw: []byte("1")}}}
		})
		tcp := waitCondition(t, name, kamajiv1alpha1.ConditionTenantConfigured, metav1.ConditionFalse, "KubeletConfigurationPatchFailed")
		if c := condition(tcp, kamajiv1alpha1.ConditionTenantConfigured); !strings.Contains(c.Message, "configurationJSONPatches[0]") {
			t.Errorf("message %q", c.Message)
		}
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Spec.Kubernetes.Kubelet.ConfigurationJSONPatches = []kamajiv1alpha1.JSONPatch{{Op: "add", Path: "/maxPods", Value: &apiextensionsv1.JSON{Raw: []byte("32")}}}
		})
		eventually(t, "maxPods 32 in kubelet-config", func(ctx context.Context) (bool, error) {
			cm := &corev1.ConfigMap{}
			if err := tc.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "kubelet-config"}, cm); err != nil {
				return false, err
			}
			return strings.Contains(cm.Data["kubelet"], "maxPods: 32"), nil
		})
		waitCondition(t, name, kamajiv1alpha1.ConditionTenantConfigured, metav1.ConditionTrue, "KubeadmPhasesApplied")
	})

	t.Run("an addon removed from the spec disappears from the tenant", func(t *testing.T) {
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.Addons.KubeProxy = nil })
		for _, o := range []client.Object{
			&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy"}},
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy"}},
			&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:node-proxier"}},
			&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy"}},
		} {
			gone(t, tc, fmt.Sprintf("%T %s", o, o.GetName()), o)
		}
		// The ConfigMap its users took over stays theirs.
		if err := tc.Get(ctxT(t), client.ObjectKey{Namespace: "kube-system", Name: "kube-proxy"}, &corev1.ConfigMap{}); err != nil {
			t.Errorf("the handed-over ConfigMap was pruned: %v", err)
		}
		eventually(t, "kubeProxy disabled in the status", func(ctx context.Context) (bool, error) {
			s := getTCP(ctx, t, name).Status.Addons.KubeProxy
			return !s.Enabled && s.Checksum == "", fmt.Errorf("%+v", s)
		})
	})

	t.Run("konnectivity removed: agent, sidecar, Secrets, files and Service port go", func(t *testing.T) {
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.Addons.Konnectivity = nil })
		gone(t, tc, "the konnectivity agent", &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "konnectivity-agent"}})
		gone(t, tc, "the konnectivity ClusterRoleBinding", &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "system:konnectivity-server"}})
		for _, s := range []client.Object{
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name + "-konnectivity-certificate"}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name + "-konnectivity-kubeconfig"}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name + "-addon-files"}},
		} {
			gone(t, env.Client, s.GetName(), s)
		}
		eventually(t, "the sidecar and the Service port to go", func(ctx context.Context) (bool, error) {
			d := getDeployment(ctx, t, name)
			svc := &corev1.Service{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, svc); err != nil {
				return false, err
			}
			return len(d.Spec.Template.Spec.Containers) == 3 && len(svc.Spec.Ports) == 1 &&
				!strings.Contains(strings.Join(d.Spec.Template.Spec.Containers[0].Args, " "), "egress-selector"), nil
		})
		eventually(t, "the konnectivity status to be cleared", func(ctx context.Context) (bool, error) {
			k := getTCP(ctx, t, name).Status.Addons.Konnectivity
			return k.Service == nil && k.ServiceAccount.Name == "" && k.ClusterRoleBinding.Name == "" && k.Agent.Mode == "", fmt.Errorf("%+v", k)
		})
	})

	t.Run("write permissions are enforced in the tenant, outside kube-system, and lifted", func(t *testing.T) {
		admin := clientFor(t, tenantConfig(t, name, kubeconfig.KeyAdmin, api.URL)) // kubeadm:cluster-admins, not the core
		block := tcpcontroller.WritePermissionsBlock(kamajiv1alpha1.Permissions{BlockCreate: true, BlockDelete: true})
		// The admission policy of the previous version, as an upgraded tenant holds it: it goes.
		legacy := []client.Object{
			&admissionregistrationv1.ValidatingAdmissionPolicy{
				ObjectMeta: metav1.ObjectMeta{Name: block.Name},
				Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
					MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
						RuleWithOperations: admissionregistrationv1.RuleWithOperations{
							Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
							Rule:       admissionregistrationv1.Rule{APIGroups: []string{"example.com"}, APIVersions: []string{"v1"}, Resources: []string{"nothing"}},
						},
					}}},
					Validations: []admissionregistrationv1.Validation{{Expression: "false"}},
				},
			},
			&admissionregistrationv1.ValidatingAdmissionPolicyBinding{
				ObjectMeta: metav1.ObjectMeta{Name: block.Name},
				Spec:       admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: block.Name, ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}},
			},
		}
		for _, obj := range legacy {
			if err := tc.Create(ctxT(t), obj); err != nil {
				t.Fatal(err)
			}
		}
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Spec.WritePermissions = kamajiv1alpha1.Permissions{BlockCreate: true, BlockDelete: true}
		})
		eventually(t, "a create in default refused as write-limited", func(ctx context.Context) (bool, error) {
			err := admin.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", GenerateName: "limited-"}})
			return err != nil && strings.Contains(err.Error(), block.Message), err
		})
		// A webhook the manager serves, called by the tenant apiserver.
		vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "kamaji-write-permissions"}}
		exists(t, tc, "the ValidatingWebhookConfiguration kamaji-write-permissions", vwc)
		if len(vwc.Webhooks) != 1 || vwc.Webhooks[0].Name != "kamaji-write-permissions.kamaji.clastix.io" ||
			!strings.HasPrefix(ptr.Deref(vwc.Webhooks[0].ClientConfig.URL, ""), env.WebhookURL+"/tenant/deny/") {
			t.Errorf("the webhook: %+v", vwc.Webhooks)
		}
		for _, obj := range legacy {
			gone(t, tc, fmt.Sprintf("the previous version's %T", obj), obj)
		}
		rollOut(t, name)
		waitStatus(t, name, kamajiv1alpha1.VersionWriteLimited)
		if err := admin.Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "allowed-while-limited"}}); err != nil {
			t.Errorf("a create in kube-system: %v", err)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "allowed-while-limited"}}
		if err := admin.Get(ctxT(t), client.ObjectKeyFromObject(cm), cm); err != nil {
			t.Fatal(err)
		}
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.WritePermissions = kamajiv1alpha1.Permissions{} })
		eventually(t, "creates accepted again once the fields are removed", func(ctx context.Context) (bool, error) {
			err := admin.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", GenerateName: "unlimited-"}})
			return err == nil, err
		})
		gone(t, tc, "the ValidatingWebhookConfiguration kamaji-write-permissions", vwc)
	})

	t.Run("the tenant's watches stop while it sleeps and start again when it wakes", func(t *testing.T) {
		scale := func(n int32) {
			tcp := getTCP(ctxT(t), t, name)
			if err := env.Client.SubResource("scale").Update(ctxT(t), tcp, client.WithSubResourceBody(&autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: n}})); err != nil {
				t.Fatal(err)
			}
		}
		scale(0)
		waitCondition(t, name, kamajiv1alpha1.ConditionTenantConfigured, metav1.ConditionUnknown, "Sleeping")
		if tenants.Active(key) || len(tenants.Watching(key)) != 0 {
			t.Fatalf("still watching a sleeping tenant: %v", tenants.Watching(key))
		}
		// A drift while asleep is not seen (nothing watches); it is repaired on waking.
		if err := tc.Delete(ctxT(t), &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}}); err != nil {
			t.Fatal(err)
		}
		scale(1)
		eventually(t, "the Deployment at one replica", func(ctx context.Context) (bool, error) {
			return ptr.Deref(getDeployment(ctx, t, name).Spec.Replicas, -1) == 1, nil
		})
		rollOut(t, name)
		waitCondition(t, name, kamajiv1alpha1.ConditionTenantConfigured, metav1.ConditionTrue, "KubeadmPhasesApplied")
		exists(t, tc, "CoreDNS again after waking", &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}})
		if !tenants.Active(key) || len(tenants.Watching(key)) == 0 {
			t.Fatalf("not watching the woken tenant: %v", tenants.Watching(key))
		}
		// And the watches work again.
		d := &appsv1.Deployment{}
		if err := tc.Get(ctxT(t), client.ObjectKey{Namespace: "kube-system", Name: "coredns"}, d); err != nil {
			t.Fatal(err)
		}
		uid := d.UID
		if err := tc.Delete(ctxT(t), d); err != nil {
			t.Fatal(err)
		}
		eventually(t, "CoreDNS back after a deletion", func(ctx context.Context) (bool, error) {
			err := tc.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "coredns"}, d)
			return err == nil && d.UID != uid, err
		})
	})

	t.Run("deleting the TCP stops its tenant client", func(t *testing.T) {
		if err := env.Client.Delete(ctxT(t), getTCP(ctxT(t), t, name)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the TCP to be gone", func(ctx context.Context) (bool, error) {
			err := env.Client.Get(ctx, key, &kamajiv1alpha1.TenantControlPlane{})
			return apierrors.IsNotFound(err), err
		})
		if tenants.Active(key) {
			t.Fatal("a deleted TCP's tenant is still watched")
		}
	})
}
