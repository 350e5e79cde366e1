package tenantcontrolplane_test

// Integration tests of the TenantControlPlane lifecycle against a real admin apiserver, the real
// etcd datastore plugin (built as it ships) and a real multi-tenant etcd with TLS and auth.
// No kubelet runs here: where a test needs the pods' progress, it plays the Deployment
// controller by writing the Deployment's status.

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	tcpcontroller "github.com/openhcp/kamaji/core/controllers/tenantcontrolplane"
	"github.com/openhcp/kamaji/core/controlplane"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/manager"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/tenant"
	"github.com/openhcp/kamaji/core/tenantpki"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/core/testenv/testdatastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

var (
	env *testenv.Env
	// tenantURLs maps the server of a tenant's kubeconfig to the tenant apiserver a test runs
	// (no Service routes to it); other tenants dial a closed port and are refused at once.
	tenantURLs sync.Map
	tenants    = tenant.NewClients(tenant.Options{Scheme: manager.Scheme(), Dial: func(server string) string {
		if u, ok := tenantURLs.Load(server); ok {
			return u.(string)
		}
		return "https://127.0.0.1:1"
	}})
	// clock is the manager's clock; tests move it forward to reach renewal deadlines.
	clockMu     sync.Mutex
	clockOffset time.Duration
	// etcdPlugin is the etcd datastore plugin the manager runs, for tests that call it directly.
	etcdPlugin settings.Plugin
	// managerPlugins are every plugin the manager runs, for tests that run passes of their own.
	managerPlugins []settings.Plugin
	// metricsURL is the manager's /metrics endpoint.
	metricsURL string
)

func now() time.Time {
	clockMu.Lock()
	defer clockMu.Unlock()
	return time.Now().Add(clockOffset)
}

func advanceClock(d time.Duration) {
	clockMu.Lock()
	clockOffset += d
	clockMu.Unlock()
}

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	dir, err := os.MkdirTemp("", "kamaji-tcp-test-")
	var plugins []settings.Plugin
	for _, p := range []struct {
		module string
		kind   settings.PluginKind
		serves string
	}{
		{"datastore-etcd", settings.KindDataStore, "etcd"},
		{"addon-coredns", settings.KindAddon, "coredns"},
		{"addon-kubeproxy", settings.KindAddon, "kube-proxy"},
		{"addon-konnectivity", settings.KindAddon, "konnectivity"},
	} {
		if err != nil {
			break
		}
		var plugin settings.Plugin
		if plugin, err = testenv.BuildPlugin(dir, p.module, p.kind, p.serves); err == nil {
			plugins = append(plugins, plugin)
			if p.module == "datastore-etcd" {
				etcdPlugin = plugin
			}
		}
	}
	if err == nil {
		managerPlugins = plugins
		s := testenv.DefaultSettings()
		s.Plugins = plugins
		// The manager's own Service, whose pods hold sleeping tenants' connections (sleep_test.go).
		s.PodNamespace, s.WebhookServiceName = managerNamespace, managerService
		// The manager serves /metrics as in production, for the metrics test to scrape.
		var port int
		if port, err = testenv.FreePort(); err == nil {
			metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
			s.MetricsBindAddress = fmt.Sprintf("127.0.0.1:%d", port)
			env, err = testenv.StartEnv(ctx, s, testenv.Options{Now: now, Tenants: tenants})
		}
	}
	cancel()
	code := testenv.RunTests(m, env, err)
	os.RemoveAll(dir)
	os.Exit(code)
}

func ctxT(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// eventually polls cond until it holds; the message says what the user was waiting for.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctxT(t), 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
	}
}

func dataStoreFor(name string, e *testkit.Etcd) *kamajiv1alpha1.DataStore {
	return testdatastore.Etcd(name, e)
}

func newTCP(name, version string) *kamajiv1alpha1.TenantControlPlane {
	return &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			DataStore:    "default",
			ControlPlane: kamajiv1alpha1.ControlPlane{Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"}},
			Kubernetes:   kamajiv1alpha1.KubernetesSpec{Version: version},
		},
	}
}

func getTCP(ctx context.Context, t *testing.T, name string) *kamajiv1alpha1.TenantControlPlane {
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, tcp); err != nil {
		t.Fatal(err)
	}
	return tcp
}

func versionStatus(tcp *kamajiv1alpha1.TenantControlPlane) kamajiv1alpha1.KubernetesVersionStatus {
	if s := tcp.Status.Kubernetes.Version.Status; s != nil {
		return *s
	}
	return ""
}

func waitStatus(t *testing.T, name string, want kamajiv1alpha1.KubernetesVersionStatus) *kamajiv1alpha1.TenantControlPlane {
	t.Helper()
	var tcp *kamajiv1alpha1.TenantControlPlane
	eventually(t, fmt.Sprintf("%s to be %s", name, want), func(ctx context.Context) (bool, error) {
		tcp = getTCP(ctx, t, name)
		return versionStatus(tcp) == want, fmt.Errorf("status %q, conditions %v", versionStatus(tcp), tcp.Status.Conditions)
	})
	return tcp
}

func getSecret(ctx context.Context, t *testing.T, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, s); err != nil {
		t.Fatalf("secret %s: %v", name, err)
	}
	return s
}

func getDeployment(ctx context.Context, t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, d); err != nil {
		t.Fatalf("deployment %s: %v", name, err)
	}
	return d
}

// rollOut plays the Deployment controller and the kubelet: every replica runs the current template.
func rollOut(t *testing.T, name string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := getDeployment(ctxT(t), t, name)
		r := ptr.Deref(d.Spec.Replicas, 1)
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: r, UpdatedReplicas: r, ReadyReplicas: r, AvailableReplicas: r}
		return env.Client.Status().Update(ctxT(t), d)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func updateTCP(t *testing.T, name string, change func(*kamajiv1alpha1.TenantControlPlane)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		tcp := getTCP(ctxT(t), t, name)
		change(tcp)
		return env.Client.Update(ctxT(t), tcp)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// updateDataStore changes a DataStore's spec, retrying when the controller's status writes
// meanwhile make the update conflict.
func updateDataStore(t *testing.T, name string, change func(*kamajiv1alpha1.DataStore)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ds := &kamajiv1alpha1.DataStore{}
		if err := env.Client.Get(ctxT(t), client.ObjectKey{Name: name}, ds); err != nil {
			return err
		}
		change(ds)
		return env.Client.Update(ctxT(t), ds)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func certOf(t *testing.T, s *corev1.Secret, key string) *x509.Certificate {
	t.Helper()
	c, err := pki.ParseCert(s.Data[key])
	if err != nil {
		t.Fatalf("%s/%s: %v", s.Name, key, err)
	}
	return c
}

func verifyChain(t *testing.T, leaf, ca *x509.Certificate, usage x509.ExtKeyUsage) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now()}); err != nil {
		t.Errorf("%s does not chain to %s for %v: %v", leaf.Subject.CommonName, ca.Subject.CommonName, usage, err)
	}
}

func TestLifecycle(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	root := etcd.Client(t)
	if err := env.Client.Create(ctxT(t), dataStoreFor("default", etcd)); err != nil {
		t.Fatal(err)
	}

	t.Run("DataStore records its plugin and becomes Ready", func(t *testing.T) {
		eventually(t, "DataStore default Ready", func(ctx context.Context) (bool, error) {
			ds := &kamajiv1alpha1.DataStore{}
			if err := env.Client.Get(ctx, client.ObjectKey{Name: "default"}, ds); err != nil {
				return false, err
			}
			p := ds.Status.Plugin
			return meta.IsStatusConditionTrue(ds.Status.Conditions, "Ready") && p != nil && p.Name != "" && p.Version != "" && p.Protocol == 1,
				fmt.Errorf("status %+v", ds.Status)
		})
	})

	tcp := newTCP("tenant-a", "v1.36.1")
	tcp.Spec.NetworkProfile.CertSANs = []string{"tenant-a.example.com", "192.0.2.10"}
	tcp.Spec.ControlPlane.Deployment.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: "Exists"}}
	tcp.Spec.ControlPlane.Deployment.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{APIServer: []string{"--audit-log-maxage=7"}}
	if err := env.Client.Create(ctxT(t), tcp); err != nil {
		t.Fatal(err)
	}

	t.Run("provisions the datastore slice, PKI, kubeconfigs, Service and Deployment", func(t *testing.T) {
		tcp := waitStatus(t, "tenant-a", kamajiv1alpha1.VersionProvisioning)
		eventually(t, "the Deployment", func(ctx context.Context) (bool, error) {
			tcp = getTCP(ctx, t, "tenant-a")
			return tcp.Status.Kubernetes.Deployment.Name == "tenant-a", fmt.Errorf("conditions %v", tcp.Status.Conditions)
		})
		ctx := ctxT(t)
		st := tcp.Status
		if st.Storage.Driver != "etcd" || st.Storage.DataStoreName != "default" || st.Storage.Setup.Schema != tcp.Spec.DataStoreSchema || st.Storage.Setup.User != tcp.Spec.DataStoreUsername {
			t.Errorf("storage status %+v", st.Storage)
		}
		if !meta.IsStatusConditionTrue(st.Conditions, kamajiv1alpha1.ConditionDataStoreReady) || !meta.IsStatusConditionTrue(st.Conditions, kamajiv1alpha1.ConditionCertificatesReady) {
			t.Errorf("conditions %v", st.Conditions)
		}
		if st.KubeConfig.Admin.SecretName != "tenant-a-admin-kubeconfig" || st.Certificates.APIServer.SecretName != "tenant-a-api-server-certificate" {
			t.Errorf("secret names in status: %+v %+v", st.KubeConfig, st.Certificates)
		}

		// The tenant's etcd user can only reach its own prefix.
		user, err := root.UserGet(ctx, tcp.Spec.DataStoreUsername)
		if err != nil || len(user.Roles) == 0 {
			t.Fatalf("tenant user in etcd: %v %v", user, err)
		}

		svc := &corev1.Service{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "tenant-a"}, svc); err != nil {
			t.Fatal(err)
		}
		if st.ControlPlaneEndpoint != net.JoinHostPort(svc.Spec.ClusterIP, "6443") {
			t.Errorf("endpoint %q, service IP %s", st.ControlPlaneEndpoint, svc.Spec.ClusterIP)
		}

		caSecret := getSecret(ctx, t, "tenant-a-ca")
		ca := certOf(t, caSecret, tenantpki.KeyCACert)
		api := certOf(t, getSecret(ctx, t, "tenant-a-api-server-certificate"), tenantpki.KeyAPIServerCert)
		verifyChain(t, api, ca, x509.ExtKeyUsageServerAuth)
		for _, want := range []string{"tenant-a.example.com", "localhost", "kubernetes.default.svc.cluster.local", "tenant-a.default.svc"} {
			if !slices.Contains(api.DNSNames, want) {
				t.Errorf("apiserver certificate lacks SAN %s: %v", want, api.DNSNames)
			}
		}
		ips := fmt.Sprint(api.IPAddresses)
		for _, want := range []string{"192.0.2.10", "127.0.0.1", "10.96.0.1", svc.Spec.ClusterIP} {
			if !strings.Contains(ips, want) {
				t.Errorf("apiserver certificate lacks IP SAN %s: %s", want, ips)
			}
		}
		kc := certOf(t, getSecret(ctx, t, "tenant-a-api-server-kubelet-client-certificate"), tenantpki.KeyAPIServerKubeletClientCert)
		verifyChain(t, kc, ca, x509.ExtKeyUsageClientAuth)
		fpca := certOf(t, getSecret(ctx, t, "tenant-a-front-proxy-ca-certificate"), tenantpki.KeyFrontProxyCACert)
		verifyChain(t, certOf(t, getSecret(ctx, t, "tenant-a-front-proxy-client-certificate"), tenantpki.KeyFrontProxyClientCert), fpca, x509.ExtKeyUsageClientAuth)
		dsCert := getSecret(ctx, t, "tenant-a-datastore-certificate")
		etcdCA, _ := pki.ParseCert(etcd.CACert)
		dc := certOf(t, dsCert, tenantpki.KeyDatastoreCert)
		verifyChain(t, dc, etcdCA, x509.ExtKeyUsageClientAuth)
		if dc.Subject.CommonName != tcp.Spec.DataStoreUsername {
			t.Errorf("datastore client certificate CN %q, want the tenant user %q", dc.Subject.CommonName, tcp.Spec.DataStoreUsername)
		}
		if sa := getSecret(ctx, t, "tenant-a-sa-certificate"); len(sa.Data["sa.key"]) == 0 || len(sa.Data["sa.pub"]) == 0 {
			t.Error("service-account key pair missing")
		}
		for _, s := range []string{"tenant-a-ca", "tenant-a-api-server-certificate", "tenant-a-admin-kubeconfig"} {
			if sec := getSecret(ctx, t, s); len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].Name != "tenant-a" || sec.Labels[kamajiv1alpha1.ManagedByLabel] != "kamaji" {
				t.Errorf("%s is not owned and labelled: %v %v", s, sec.OwnerReferences, sec.Labels)
			}
		}

		admin := getSecret(ctx, t, "tenant-a-admin-kubeconfig")
		for _, key := range []string{"admin.conf", "super-admin.conf", "admin.svc", "super-admin.svc"} {
			cfg, err := clientcmd.Load(admin.Data[key])
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			server := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster].Server
			want := "https://" + st.ControlPlaneEndpoint
			if strings.HasSuffix(key, ".svc") {
				want = "https://tenant-a.default.svc:6443"
			}
			if server != want {
				t.Errorf("%s server %s, want %s", key, server, want)
			}
		}
		for secret, key := range map[string]string{"tenant-a-controller-manager-kubeconfig": "controller-manager.conf", "tenant-a-scheduler-kubeconfig": "scheduler.conf"} {
			cfg, err := clientcmd.Load(getSecret(ctx, t, secret).Data[key])
			if err != nil || cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster].Server != "https://127.0.0.1:6443" {
				t.Errorf("%s: %v", secret, err)
			}
		}

		dep := getDeployment(ctx, t, "tenant-a")
		pod := dep.Spec.Template.Spec
		api0 := pod.Containers[0]
		args := strings.Join(api0.Args, " ") + strings.Join(api0.Command, " ")
		for _, want := range []string{"--etcd-prefix=/" + tcp.Spec.DataStoreSchema, "--etcd-servers=https://" + etcd.Endpoints[0], "--audit-log-maxage=7", "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname"} {
			if !strings.Contains(args, want) {
				t.Errorf("kube-apiserver args lack %s: %s", want, args)
			}
		}
		if api0.Image != "registry.k8s.io/kube-apiserver:v1.36.1" {
			t.Errorf("image %s", api0.Image)
		}
		if len(pod.Tolerations) != 1 || pod.Tolerations[0].Key != "dedicated" {
			t.Errorf("tolerations %v", pod.Tolerations)
		}
		if dep.Spec.Template.Annotations[controlplane.SecretsChecksumAnnotation] == "" {
			t.Error("no secrets checksum on the pod template")
		}
		if s := dep.Spec.Strategy; s.RollingUpdate == nil || s.RollingUpdate.MaxSurge.String() != "100%" || s.RollingUpdate.MaxUnavailable.IntValue() != 0 {
			t.Errorf("strategy %+v", s)
		}
	})

	t.Run("extra args removed from the spec leave the Deployment", func(t *testing.T) {
		updateTCP(t, "tenant-a", func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.ControlPlane.Deployment.ExtraArgs = nil })
		eventually(t, "the extra arg to go", func(ctx context.Context) (bool, error) {
			return !strings.Contains(strings.Join(getDeployment(ctx, t, "tenant-a").Spec.Template.Spec.Containers[0].Args, " "), "--audit-log-maxage"), nil
		})
	})

	t.Run("Ready once the pods run, then Upgrading, then Ready on the new version", func(t *testing.T) {
		rollOut(t, "tenant-a")
		tcp := waitStatus(t, "tenant-a", kamajiv1alpha1.VersionReady)
		if tcp.Status.Kubernetes.Version.Version != "v1.36.1" || !meta.IsStatusConditionTrue(tcp.Status.Conditions, kamajiv1alpha1.ConditionReady) {
			t.Fatalf("installed version %q, conditions %v", tcp.Status.Kubernetes.Version.Version, tcp.Status.Conditions)
		}
		updateTCP(t, "tenant-a", func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.Kubernetes.Version = "v1.37.2" })
		waitStatus(t, "tenant-a", kamajiv1alpha1.VersionUpgrading)
		if img := getDeployment(ctxT(t), t, "tenant-a").Spec.Template.Spec.Containers[0].Image; img != "registry.k8s.io/kube-apiserver:v1.37.2" {
			t.Fatalf("the upgrade did not reach the Deployment: %s", img)
		}
		rollOut(t, "tenant-a")
		tcp = waitStatus(t, "tenant-a", kamajiv1alpha1.VersionReady)
		if tcp.Status.Kubernetes.Version.Version != "v1.37.2" {
			t.Fatalf("installed version %q after the upgrade", tcp.Status.Kubernetes.Version.Version)
		}
	})

	t.Run("kubectl scale to zero sleeps, scaling up wakes", func(t *testing.T) {
		scale := func(n int32) {
			tcp := getTCP(ctxT(t), t, "tenant-a")
			if err := env.Client.SubResource("scale").Update(ctxT(t), tcp, client.WithSubResourceBody(&autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: n}})); err != nil {
				t.Fatal(err)
			}
		}
		scale(0)
		eventually(t, "the Deployment at zero replicas", func(ctx context.Context) (bool, error) {
			return ptr.Deref(getDeployment(ctx, t, "tenant-a").Spec.Replicas, -1) == 0, nil
		})
		rollOut(t, "tenant-a")
		waitStatus(t, "tenant-a", kamajiv1alpha1.VersionSleeping)
		scale(1)
		eventually(t, "the Deployment at one replica", func(ctx context.Context) (bool, error) {
			return ptr.Deref(getDeployment(ctx, t, "tenant-a").Spec.Replicas, -1) == 1, nil
		})
		rollOut(t, "tenant-a")
		waitStatus(t, "tenant-a", kamajiv1alpha1.VersionReady)
	})

	t.Run("paused TCPs are not reconciled until resumed", func(t *testing.T) {
		updateTCP(t, "tenant-a", func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Annotations = map[string]string{kamajiv1alpha1.PausedAnnotation: ""}
			x.Spec.NetworkProfile.CertSANs = append(x.Spec.NetworkProfile.CertSANs, "paused.example.com")
		})
		before := getTCP(ctxT(t), t, "tenant-a")
		// A reconcile of the paused object (the same code the manager runs) changes nothing.
		r := &tcpcontroller.Reconciler{Client: env.Client, APIReader: env.Client}
		if _, err := r.Reconcile(ctxT(t), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(before)}); err != nil {
			t.Fatal(err)
		}
		after := getTCP(ctxT(t), t, "tenant-a")
		if after.Status.ObservedGeneration != before.Status.ObservedGeneration || after.Status.ObservedGeneration == after.Generation {
			t.Fatalf("a paused TCP was reconciled: observed %d, generation %d", after.Status.ObservedGeneration, after.Generation)
		}
		api := certOf(t, getSecret(ctxT(t), t, "tenant-a-api-server-certificate"), tenantpki.KeyAPIServerCert)
		if slices.Contains(api.DNSNames, "paused.example.com") {
			t.Fatal("the certificate changed while paused")
		}
		updateTCP(t, "tenant-a", func(x *kamajiv1alpha1.TenantControlPlane) { delete(x.Annotations, kamajiv1alpha1.PausedAnnotation) })
		eventually(t, "the new SAN after resuming", func(ctx context.Context) (bool, error) {
			api := certOf(t, getSecret(ctx, t, "tenant-a-api-server-certificate"), tenantpki.KeyAPIServerCert)
			return slices.Contains(api.DNSNames, "paused.example.com"), nil
		})
	})

	t.Run("a changed certificate rolls the pods", func(t *testing.T) {
		before := getDeployment(ctxT(t), t, "tenant-a").Spec.Template.Annotations[controlplane.SecretsChecksumAnnotation]
		oldSerial := certOf(t, getSecret(ctxT(t), t, "tenant-a-api-server-certificate"), tenantpki.KeyAPIServerCert).SerialNumber
		updateTCP(t, "tenant-a", func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Annotations = map[string]string{kamajiv1alpha1.RotateCertificatesAnnotation: "now"}
		})
		eventually(t, "every leaf to be reissued and the annotation removed", func(ctx context.Context) (bool, error) {
			tcp := getTCP(ctx, t, "tenant-a")
			serial := certOf(t, getSecret(ctx, t, "tenant-a-api-server-certificate"), tenantpki.KeyAPIServerCert).SerialNumber
			_, pending := tcp.Annotations[kamajiv1alpha1.RotateCertificatesAnnotation]
			return serial.Cmp(oldSerial) != 0 && !pending, nil
		})
		eventually(t, "the pod template checksum to change", func(ctx context.Context) (bool, error) {
			return getDeployment(ctx, t, "tenant-a").Spec.Template.Annotations[controlplane.SecretsChecksumAnnotation] != before, nil
		})
	})

	t.Run("certificates are renewed before the expiration deadline", func(t *testing.T) {
		old := certOf(t, getSecret(ctxT(t), t, "tenant-a-api-server-kubelet-client-certificate"), tenantpki.KeyAPIServerKubeletClientCert)
		// Move the manager's clock to 12h before expiry: inside the 24h deadline.
		advanceClock(time.Until(old.NotAfter) - 12*time.Hour)
		t.Cleanup(func() { advanceClock(-(time.Until(old.NotAfter) - 12*time.Hour)) })
		updateTCP(t, "tenant-a", func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Spec.NetworkProfile.CertSANs = append(x.Spec.NetworkProfile.CertSANs, "renew.example.com")
		})
		eventually(t, "the kubelet client certificate to be renewed", func(ctx context.Context) (bool, error) {
			c := certOf(t, getSecret(ctx, t, "tenant-a-api-server-kubelet-client-certificate"), tenantpki.KeyAPIServerKubeletClientCert)
			return c.NotAfter.After(old.NotAfter), nil
		})
		eventually(t, "the admin kubeconfig certificate to be renewed", func(ctx context.Context) (bool, error) {
			kc, err := clientcmd.Load(getSecret(ctx, t, "tenant-a-admin-kubeconfig").Data[kubeconfig.KeyAdmin])
			if err != nil {
				return false, err
			}
			for _, a := range kc.AuthInfos {
				if c, _ := pki.ParseCert(a.ClientCertificateData); c == nil || !c.NotAfter.After(old.NotAfter) {
					return false, nil
				}
			}
			return true, nil
		})
	})

	t.Run("CA rotation reissues every dependent certificate", func(t *testing.T) {
		oldCA := certOf(t, getSecret(ctxT(t), t, "tenant-a-ca"), tenantpki.KeyCACert)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s := getSecret(ctxT(t), t, "tenant-a-ca")
			s.Annotations = map[string]string{kamajiv1alpha1.RotateCertificatesAnnotation: "ca"}
			return env.Client.Update(ctxT(t), s)
		})
		if err != nil {
			t.Fatal(err)
		}
		waitStatus(t, "tenant-a", kamajiv1alpha1.VersionCertificateAuthorityRotating)
		ca := certOf(t, getSecret(ctxT(t), t, "tenant-a-ca"), tenantpki.KeyCACert)
		if ca.Equal(oldCA) {
			t.Fatal("the CA was not replaced")
		}
		for secret, key := range map[string]string{
			"tenant-a-api-server-certificate": tenantpki.KeyAPIServerCert, "tenant-a-api-server-kubelet-client-certificate": tenantpki.KeyAPIServerKubeletClientCert,
		} {
			usage := x509.ExtKeyUsageClientAuth
			if strings.Contains(key, "apiserver.crt") {
				usage = x509.ExtKeyUsageServerAuth
			}
			verifyChain(t, certOf(t, getSecret(ctxT(t), t, secret), key), ca, usage)
		}
		kc, _ := clientcmd.Load(getSecret(ctxT(t), t, "tenant-a-admin-kubeconfig").Data[kubeconfig.KeyAdmin])
		for _, a := range kc.AuthInfos {
			c, _ := pki.ParseCert(a.ClientCertificateData)
			verifyChain(t, c, ca, x509.ExtKeyUsageClientAuth)
		}
		rollOut(t, "tenant-a")
		waitStatus(t, "tenant-a", kamajiv1alpha1.VersionReady)
	})

	t.Run("deletion deprovisions the datastore slice", func(t *testing.T) {
		tcp := getTCP(ctxT(t), t, "tenant-a")
		prefix := "/" + tcp.Spec.DataStoreSchema + "/"
		if _, err := root.Put(ctxT(t), prefix+"registry/probe", "x"); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Delete(ctxT(t), tcp); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the TCP to be gone", func(ctx context.Context) (bool, error) {
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(tcp), &kamajiv1alpha1.TenantControlPlane{})
			return apierrors.IsNotFound(err), err
		})
		ctx := ctxT(t)
		if _, err := root.UserGet(ctx, tcp.Spec.DataStoreUsername); err == nil {
			t.Error("the tenant's etcd user is still there")
		}
		roles, err := root.RoleList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range roles.Roles {
			if strings.Contains(r, tcp.Spec.DataStoreUsername) || strings.Contains(r, tcp.Spec.DataStoreSchema) {
				t.Errorf("role %s is still there", r)
			}
		}
		resp, err := root.Get(ctx, prefix, clientv3WithPrefix()...)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count != 0 {
			t.Errorf("%d keys remain under %s", resp.Count, prefix)
		}
	})
}
