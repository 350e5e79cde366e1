package webhooks_test

// Integration tests: every CEL rule of the CRDs and every webhook rule, against a real
// kube-apiserver with our webhooks served by the manager. Each rule has an accepted and a
// rejected manifest, and a rejection must name the field.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	autoscalingv1 "k8s.io/api/autoscaling/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	s := testenv.DefaultSettings()
	sha := strings.Repeat("0", 64)
	s.Plugins = []settings.Plugin{
		{Kind: settings.KindDataStore, Name: "etcd", Path: "/nonexistent", SHA256: sha, Drivers: []string{"etcd"}},
		{Kind: settings.KindDataStore, Name: "mysql", Path: "/nonexistent", SHA256: sha, Drivers: []string{"MySQL"}},
		{Kind: settings.KindDataStore, Name: "cockroach", Path: "/nonexistent", SHA256: sha, Drivers: []string{"CockroachDB"}},
		{Kind: settings.KindAddon, Name: "addons", Path: "/nonexistent", SHA256: sha, Addons: []string{"coredns", "kube-proxy", "konnectivity"}},
	}
	var err error
	env, err = testenv.StartEnv(ctx, s, testenv.Options{})
	if err == nil {
		err = fixtures(ctx)
	}
	cancel()
	os.Exit(testenv.RunTests(m, env, err))
}

func etcdDataStore(name string) *kamajiv1alpha1.DataStore {
	return &kamajiv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: kamajiv1alpha1.DataStoreSpec{
			Driver: "etcd", Endpoints: []string{"127.0.0.1:2379"},
			TLSConfig: &kamajiv1alpha1.TLSConfig{
				CertificateAuthority: kamajiv1alpha1.CertKeyPair{
					Certificate: kamajiv1alpha1.ContentRef{Content: []byte("ca")},
					PrivateKey:  &kamajiv1alpha1.ContentRef{Content: []byte("key")},
				},
				ClientCertificate: &kamajiv1alpha1.ClientCertificate{
					Certificate: kamajiv1alpha1.ContentRef{Content: []byte("crt")},
					PrivateKey:  kamajiv1alpha1.ContentRef{Content: []byte("key")},
				},
			},
		},
	}
}

func basicAuthDataStore(name, driver string) *kamajiv1alpha1.DataStore {
	return &kamajiv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: kamajiv1alpha1.DataStoreSpec{
			Driver: driver, Endpoints: []string{"127.0.0.1:3306"},
			BasicAuth: &kamajiv1alpha1.BasicAuth{
				Username: kamajiv1alpha1.ContentRef{Content: []byte("root")},
				Password: kamajiv1alpha1.ContentRef{Content: []byte("secret")},
			},
		},
	}
}

func fixtures(ctx context.Context) error {
	for _, ds := range []*kamajiv1alpha1.DataStore{
		etcdDataStore("default"), etcdDataStore("events"),
		basicAuthDataStore("mysql", "MySQL"), basicAuthDataStore("pg", "PostgreSQL"), basicAuthDataStore("roach", "CockroachDB"),
	} {
		if err := env.Client.Create(ctx, ds); err != nil {
			return fmt.Errorf("fixture DataStore %s: %w", ds.Name, err)
		}
	}
	return nil
}

// tcp returns a valid TenantControlPlane; cases mutate it.
func tcp(name string) *kamajiv1alpha1.TenantControlPlane {
	return &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			ControlPlane: kamajiv1alpha1.ControlPlane{Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"}},
			Kubernetes:   kamajiv1alpha1.KubernetesSpec{Version: "v1.37.2"},
		},
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// expectRejected asserts the error is an admission or validation rejection naming every want.
func expectRejected(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want a rejection mentioning %q", want)
	}
	if !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) && !apierrors.IsBadRequest(err) {
		t.Fatalf("want a validation rejection, got %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("rejection %q does not mention %q", err.Error(), w)
		}
	}
}

func create(t *testing.T, obj client.Object) error {
	t.Helper()
	err := env.Client.Create(ctx(t), obj)
	if err == nil {
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
	}
	return err
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := create(t, obj); err != nil {
		t.Fatalf("create %s: %v", obj.GetName(), err)
	}
}

// update re-reads the object, applies the change and updates it, retrying when the
// controller wrote in between (a conflict is not the answer under test).
// conflicts: the manager writes the TCPs' status and finalizers meanwhile (each failed attempt
// to start the tests' missing plugins is a status change), so an update may need a few tries.
var conflicts = wait.Backoff{Steps: 40, Duration: 20 * time.Millisecond, Factor: 1.2, Jitter: 0.2, Cap: time.Second}

func update(t *testing.T, obj *kamajiv1alpha1.TenantControlPlane, change func(*kamajiv1alpha1.TenantControlPlane)) error {
	t.Helper()
	return retry.RetryOnConflict(conflicts, func() error {
		cur := &kamajiv1alpha1.TenantControlPlane{}
		if err := env.Client.Get(ctx(t), client.ObjectKeyFromObject(obj), cur); err != nil {
			return err
		}
		change(cur)
		return env.Client.Update(ctx(t), cur)
	})
}

func updateDS(t *testing.T, name string, change func(*kamajiv1alpha1.DataStore)) error {
	t.Helper()
	return retry.RetryOnConflict(conflicts, func() error {
		cur := &kamajiv1alpha1.DataStore{}
		if err := env.Client.Get(ctx(t), client.ObjectKey{Name: name}, cur); err != nil {
			return err
		}
		change(cur)
		return env.Client.Update(ctx(t), cur)
	})
}

func TestSeedExamplesAreAccepted(t *testing.T) {
	files, err := filepath.Glob("testdata/examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(data, &u.Object); err != nil {
				t.Fatal(err)
			}
			mustCreate(t, u)
		})
	}
}

func TestDefaulting(t *testing.T) {
	obj := tcp("defaults")
	obj.Spec.ControlPlane.Deployment.Replicas = nil
	mustCreate(t, obj)
	got := &kamajiv1alpha1.TenantControlPlane{}
	if err := env.Client.Get(ctx(t), client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	np := s.NetworkProfile
	checks := map[string][2]string{
		"dataStore":             {s.DataStore, "default"},
		"replicas":              {fmt.Sprint(*s.ControlPlane.Deployment.Replicas), "2"},
		"serviceCidrs":          {strings.Join(np.ServiceCIDRs, ","), "10.96.0.0/16"},
		"podCidrs":              {strings.Join(np.PodCIDRs, ","), "10.244.0.0/16"},
		"dnsServiceIPs":         {strings.Join(np.DNSServiceIPs, ","), "10.96.0.10"},
		"clusterDomain":         {np.ClusterDomain, "cluster.local"},
		"port":                  {fmt.Sprint(np.Port), "6443"},
		"strategy.maxSurge":     {s.ControlPlane.Deployment.Strategy.RollingUpdate.MaxSurge.String(), "100%"},
		"preferredAddressTypes": {fmt.Sprint(s.Kubernetes.Kubelet.PreferredAddressTypes), "[InternalIP ExternalIP Hostname]"},
	}
	for field, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s defaulted to %q, want %q", field, c[0], c[1])
		}
	}
	if !strings.HasPrefix(s.DataStoreSchema, "t_default_defaults_") || len(s.DataStoreUsername) > 32 || s.DataStoreUsername == "" {
		t.Errorf("schema/username not defaulted to portable names: %q %q", s.DataStoreSchema, s.DataStoreUsername)
	}
	if len(s.Kubernetes.AdmissionControllers) != 17 {
		t.Errorf("admission controllers defaulted to %v", s.Kubernetes.AdmissionControllers)
	}

	// ns-a/b-c and ns-a-b/c must not share a schema.
	a, b := tcp("b-c"), tcp("c")
	a.Namespace, b.Namespace = "ns-a", "ns-a-b"
	for _, o := range []*kamajiv1alpha1.TenantControlPlane{a, b} {
		mustCreateNamespace(t, o.Namespace)
		mustCreate(t, o)
	}
	if a.Spec.DataStoreSchema == b.Spec.DataStoreSchema || a.Spec.DataStoreUsername == b.Spec.DataStoreUsername {
		t.Errorf("ns-a/b-c and ns-a-b/c collide: %s", a.Spec.DataStoreSchema)
	}

	// Plural CIDRs follow the deprecated singular fields, the DNS address follows the range.
	c := tcp("singular")
	c.Spec.NetworkProfile.ServiceCIDR = "10.50.0.0/16"
	c.Spec.NetworkProfile.PodCIDR = "10.60.0.0/16"
	mustCreate(t, c)
	if c.Spec.NetworkProfile.ServiceCIDRs[0] != "10.50.0.0/16" || c.Spec.NetworkProfile.PodCIDRs[0] != "10.60.0.0/16" || c.Spec.NetworkProfile.DNSServiceIPs[0] != "10.50.0.10" {
		t.Errorf("plural fields not defaulted from singular: %+v", c.Spec.NetworkProfile)
	}
}

// A TCP written without networkProfile, as kubectl sends it (a typed client always sends the
// object), gets the network defaults whole: the CoreDNS addon needs the DNS address, which the
// defaulter derives from the service range.
func TestDefaultingWithoutNetworkProfile(t *testing.T) {
	got := createYAML(t, "no-network-profile", "v1.37.2", `
  addons:
    coreDNS: {}
`)
	np := got.Spec.NetworkProfile
	if strings.Join(np.ServiceCIDRs, ",") != "10.96.0.0/16" || strings.Join(np.PodCIDRs, ",") != "10.244.0.0/16" ||
		strings.Join(np.DNSServiceIPs, ",") != "10.96.0.10" || np.Port != 6443 {
		t.Errorf("networkProfile defaulted to %+v, want the service range 10.96.0.0/16 and DNS at 10.96.0.10", np)
	}
}

// A version written without its v, as the version policy allows, must not reach the images:
// they are tagged v1.x.y.
func TestDefaultingVersionWithoutV(t *testing.T) {
	if got := createYAML(t, "version-without-v", `"1.37.2"`, ""); got.Spec.Kubernetes.Version != "v1.37.2" {
		t.Errorf("spec.kubernetes.version %q, want v1.37.2", got.Spec.Kubernetes.Version)
	}
}

// createYAML creates a TCP written as a user writes it, in YAML (kubectl sends no empty object
// for a field left out, a typed client does), with more of its spec, and reads it back.
func createYAML(t *testing.T, name, version, moreSpec string) *kamajiv1alpha1.TenantControlPlane {
	t.Helper()
	u := &unstructured.Unstructured{}
	manifest := `apiVersion: kamaji.clastix.io/v1alpha1
kind: TenantControlPlane
metadata:
  name: ` + name + `
  namespace: default
spec:
  controlPlane:
    service:
      serviceType: ClusterIP
  kubernetes:
    version: ` + version + moreSpec
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, u)
	got := &kamajiv1alpha1.TenantControlPlane{}
	if err := env.Client.Get(ctx(t), client.ObjectKeyFromObject(u), got); err != nil {
		t.Fatal(err)
	}
	return got
}

func mustCreateNamespace(t *testing.T, name string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(name)
	if err := testenv.IgnoreAlreadyExists(env.Client.Create(ctx(t), u)); err != nil {
		t.Fatal(err)
	}
}

func TestTenantControlPlaneCELRules(t *testing.T) {
	t.Run("dataStore cannot be unset", func(t *testing.T) {
		o := tcp("cel-unset-ds")
		mustCreate(t, o)
		expectRejected(t, update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.DataStore = "" }), "unsetting the dataStore is not supported")
		if err := update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.DataStore = "events" }); err != nil {
			t.Errorf("changing the dataStore (a migration) must be accepted: %v", err)
		}
	})
	t.Run("dataStoreSchema and dataStoreUsername cannot be unset or changed", func(t *testing.T) {
		o := tcp("cel-schema")
		mustCreate(t, o)
		expectRejected(t, update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.DataStoreSchema = "" }), "unsetting the dataStoreSchema is not supported")
		expectRejected(t, update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.DataStoreSchema = "other" }), "spec.dataStoreSchema", "changing the dataStoreSchema is not supported")
		expectRejected(t, update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.DataStoreUsername = "" }), "unsetting the dataStoreUsername is not supported")
		expectRejected(t, update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.DataStoreUsername = "other" }), "spec.dataStoreUsername", "changing the dataStoreUsername is not supported")
		if err := update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.Kubernetes.Kubelet.CGroupFS = "systemd" }); err != nil {
			t.Errorf("an unrelated change must be accepted: %v", err)
		}
	})
	t.Run("loadBalancerSourceRanges only with LoadBalancer", func(t *testing.T) {
		o := tcp("cel-lbsr")
		o.Spec.NetworkProfile.LoadBalancerSourceRanges = []string{"10.0.0.0/8"}
		expectRejected(t, create(t, o), "spec.networkProfile.loadBalancerSourceRanges", "LoadBalancer source ranges are supported only with LoadBalancer service type")
		o.Spec.ControlPlane.Service.ServiceType = "LoadBalancer"
		mustCreate(t, o)
	})
	t.Run("loadBalancerSourceRanges are CIDRs", func(t *testing.T) {
		o := tcp("cel-lbsr-format")
		o.Spec.ControlPlane.Service.ServiceType = "LoadBalancer"
		o.Spec.NetworkProfile.LoadBalancerSourceRanges = []string{"not-a-cidr"}
		expectRejected(t, create(t, o), "spec.networkProfile.loadBalancerSourceRanges[0]", "must contain CIDRs")
	})
	t.Run("loadBalancerClass only with LoadBalancer, then immutable", func(t *testing.T) {
		o := tcp("cel-lbc")
		o.Spec.ControlPlane.Service.ServiceType = "NodePort"
		o.Spec.NetworkProfile.LoadBalancerClass = ptr.To("example.com/internal")
		expectRejected(t, create(t, o), "spec.networkProfile.loadBalancerClass", "LoadBalancerClass is supported only with LoadBalancer service type")
		o.Spec.ControlPlane.Service.ServiceType = "LoadBalancer"
		mustCreate(t, o)
		expectRejected(t, update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Spec.NetworkProfile.LoadBalancerClass = ptr.To("example.com/other")
		}), "spec.networkProfile.loadBalancerClass", "is immutable")
		expectRejected(t, update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.NetworkProfile.LoadBalancerClass = nil }),
			"spec.networkProfile.loadBalancerClass", "LoadBalancerClass cannot be set or unset at runtime")
	})
	t.Run("loadBalancerClass cannot be added to a running LoadBalancer", func(t *testing.T) {
		o := tcp("cel-lbc-add")
		o.Spec.ControlPlane.Service.ServiceType = "LoadBalancer"
		mustCreate(t, o)
		expectRejected(t, update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Spec.NetworkProfile.LoadBalancerClass = ptr.To("example.com/internal")
		}), "spec.networkProfile.loadBalancerClass", "LoadBalancerClass cannot be set or unset at runtime")
	})
	t.Run("loadBalancerClass format", func(t *testing.T) {
		o := tcp("cel-lbc-format")
		o.Spec.ControlPlane.Service.ServiceType = "LoadBalancer"
		o.Spec.NetworkProfile.LoadBalancerClass = ptr.To("no prefix")
		expectRejected(t, create(t, o), "spec.networkProfile.loadBalancerClass must be a label-style name")
	})
	t.Run("konnectivity agent mode and replicas", func(t *testing.T) {
		o := tcp("cel-konn")
		o.Spec.Addons.Konnectivity = &kamajiv1alpha1.KonnectivitySpec{}
		o.Spec.Addons.Konnectivity.KonnectivityAgentSpec.Mode = "DaemonSet"
		o.Spec.Addons.Konnectivity.KonnectivityAgentSpec.Replicas = ptr.To[int32](2)
		expectRejected(t, create(t, o), "spec.addons.konnectivity.agent.replicas", "replicas must be 0 when mode is DaemonSet, and greater than 0 when mode is Deployment")
		o.Spec.Addons.Konnectivity.KonnectivityAgentSpec.Mode = "Deployment"
		o.Spec.Addons.Konnectivity.KonnectivityAgentSpec.Replicas = ptr.To[int32](0)
		expectRejected(t, create(t, o), "spec.addons.konnectivity.agent.replicas", "greater than 0 when mode is Deployment")
		o.Spec.Addons.Konnectivity.KonnectivityAgentSpec.Replicas = ptr.To[int32](2)
		mustCreate(t, o)
	})
	t.Run("ingress and gateway are exclusive", func(t *testing.T) {
		o := tcp("cel-ingress-gateway")
		o.Spec.ControlPlane.Ingress = &kamajiv1alpha1.IngressSpec{Hostname: "a.example.com"}
		o.Spec.ControlPlane.Gateway = &kamajiv1alpha1.GatewaySpec{Hostname: "a.example.com"}
		expectRejected(t, create(t, o), "spec.controlPlane", "using both ingress and gateway is not supported")
		o.Spec.ControlPlane.Gateway = nil
		mustCreate(t, o)
	})
	t.Run("CIDR and IP formats", func(t *testing.T) {
		for field, mutate := range map[string]func(*kamajiv1alpha1.NetworkProfileSpec){
			"spec.networkProfile.serviceCidr must be a CIDR":    func(n *kamajiv1alpha1.NetworkProfileSpec) { n.ServiceCIDR = "10.96.0.0" },
			"spec.networkProfile.podCidr must be a CIDR":        func(n *kamajiv1alpha1.NetworkProfileSpec) { n.PodCIDR = "pods" },
			"spec.networkProfile.serviceCidrs must contain":     func(n *kamajiv1alpha1.NetworkProfileSpec) { n.ServiceCIDRs = []string{"x"} },
			"spec.networkProfile.podCidrs must contain":         func(n *kamajiv1alpha1.NetworkProfileSpec) { n.PodCIDRs = []string{"x"} },
			"spec.networkProfile.address must be an IP":         func(n *kamajiv1alpha1.NetworkProfileSpec) { n.Address = "example.com" },
			"spec.networkProfile.advertiseAddress must be":      func(n *kamajiv1alpha1.NetworkProfileSpec) { n.AdvertiseAddress = "1.2.3" },
			"spec.networkProfile.dnsServiceIPs must contain IP": func(n *kamajiv1alpha1.NetworkProfileSpec) { n.DNSServiceIPs = []string{"dns"} },
		} {
			o := tcp("cel-formats")
			mutate(&o.Spec.NetworkProfile)
			expectRejected(t, create(t, o), field)
		}
		o := tcp("cel-formats-ok")
		o.Spec.NetworkProfile.Address = "192.168.0.10"
		o.Spec.NetworkProfile.AdvertiseAddress = "10.0.0.5"
		o.Spec.NetworkProfile.ServiceCIDRs = []string{"10.96.0.0/16", "fd00:10:96::/112"}
		mustCreate(t, o)
	})
	t.Run("clusterDomain is immutable", func(t *testing.T) {
		o := tcp("cel-domain")
		mustCreate(t, o)
		expectRejected(t, update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.NetworkProfile.ClusterDomain = "tenant.local" }),
			"spec.networkProfile.clusterDomain is immutable")
	})
	t.Run("enums", func(t *testing.T) {
		o := tcp("cel-enum")
		o.Spec.ControlPlane.Service.ServiceType = "ExternalName"
		expectRejected(t, create(t, o), "spec.controlPlane.service.serviceType", "Unsupported value")
		o = tcp("cel-enum")
		o.Spec.Kubernetes.AdmissionControllers = []kamajiv1alpha1.AdmissionController{"NoSuchPlugin"}
		expectRejected(t, create(t, o), "spec.kubernetes.admissionControllers[0]")
	})
}

func TestDataStoreCELRules(t *testing.T) {
	t.Run("driver is immutable", func(t *testing.T) {
		mustCreate(t, etcdDataStore("cel-immutable"))
		expectRejected(t, updateDS(t, "cel-immutable", func(d *kamajiv1alpha1.DataStore) { d.Spec.Driver = "MySQL" }), "spec.driver", "Datastore driver is immutable")
		if err := updateDS(t, "cel-immutable", func(d *kamajiv1alpha1.DataStore) { d.Spec.Endpoints = []string{"10.0.0.1:2379"} }); err != nil {
			t.Errorf("changing endpoints must be accepted: %v", err)
		}
	})
	etcdCases := map[string]func(*kamajiv1alpha1.DataStore){
		"certificateAuthority privateKey must have secretReference or content when driver is etcd": func(d *kamajiv1alpha1.DataStore) {
			d.Spec.TLSConfig.CertificateAuthority.PrivateKey = nil
		},
		"clientCertificate must have secretReference or content when driver is etcd": func(d *kamajiv1alpha1.DataStore) {
			d.Spec.TLSConfig.ClientCertificate.Certificate = kamajiv1alpha1.ContentRef{}
		},
		"clientCertificate privateKey must have secretReference or content when driver is etcd": func(d *kamajiv1alpha1.DataStore) {
			d.Spec.TLSConfig.ClientCertificate.PrivateKey = kamajiv1alpha1.ContentRef{}
		},
	}
	for msg, mutate := range etcdCases {
		t.Run(msg, func(t *testing.T) {
			d := etcdDataStore("cel-etcd")
			mutate(d)
			expectRejected(t, create(t, d), msg)
			mustCreate(t, etcdDataStore("cel-etcd"))
		})
	}
	t.Run("etcd needs tlsConfig", func(t *testing.T) {
		d := etcdDataStore("cel-etcd-notls")
		d.Spec.TLSConfig = nil
		expectRejected(t, create(t, d), "certificateAuthority privateKey must have secretReference or content when driver is etcd")
	})
	otherCases := map[string]func(*kamajiv1alpha1.DataStore){
		"When driver is not etcd and tlsConfig exists, clientCertificate must be null or contain valid content": func(d *kamajiv1alpha1.DataStore) {
			d.Spec.TLSConfig = &kamajiv1alpha1.TLSConfig{
				CertificateAuthority: kamajiv1alpha1.CertKeyPair{Certificate: kamajiv1alpha1.ContentRef{Content: []byte("ca")}},
				ClientCertificate:    &kamajiv1alpha1.ClientCertificate{PrivateKey: kamajiv1alpha1.ContentRef{Content: []byte("k")}},
			}
		},
		"When driver is not etcd and basicAuth exists, username must have secretReference or content": func(d *kamajiv1alpha1.DataStore) {
			d.Spec.BasicAuth.Username = kamajiv1alpha1.ContentRef{}
		},
		"When driver is not etcd and basicAuth exists, password must have secretReference or content": func(d *kamajiv1alpha1.DataStore) {
			d.Spec.BasicAuth.Password = kamajiv1alpha1.ContentRef{}
		},
		"When driver is not etcd, either tlsConfig or basicAuth must be provided": func(d *kamajiv1alpha1.DataStore) {
			d.Spec.BasicAuth = nil
		},
	}
	for msg, mutate := range otherCases {
		t.Run(msg, func(t *testing.T) {
			d := basicAuthDataStore("cel-mysql", "MySQL")
			mutate(d)
			expectRejected(t, create(t, d), msg)
			ok := basicAuthDataStore("cel-mysql", "MySQL")
			ok.Spec.TLSConfig = &kamajiv1alpha1.TLSConfig{
				CertificateAuthority: kamajiv1alpha1.CertKeyPair{Certificate: kamajiv1alpha1.ContentRef{Content: []byte("ca")}},
				ClientCertificate: &kamajiv1alpha1.ClientCertificate{
					Certificate: kamajiv1alpha1.ContentRef{Content: []byte("c")}, PrivateKey: kamajiv1alpha1.ContentRef{Content: []byte("k")},
				},
			}
			mustCreate(t, ok)
		})
	}
	t.Run("secretReference needs keyPath", func(t *testing.T) {
		d := basicAuthDataStore("cel-keypath", "MySQL")
		d.Spec.BasicAuth.Password = kamajiv1alpha1.ContentRef{SecretRef: &kamajiv1alpha1.SecretReference{Name: "s", Namespace: "n"}}
		expectRejected(t, create(t, d), "spec.basicAuth.password.secretReference.keyPath")
	})
}

func TestDataStoreDriverWebhook(t *testing.T) {
	expectRejected(t, create(t, basicAuthDataStore("tikv", "TiKV")), "spec.driver", `Unsupported value: "TiKV"`, "CockroachDB")
	mustCreate(t, basicAuthDataStore("roach-2", "CockroachDB")) // third-party, served by a configured plugin
	mustCreate(t, basicAuthDataStore("nats-2", "NATS"))         // built-in, accepted even without a plugin
}

func TestDataStoreInUseCannotBeDeleted(t *testing.T) {
	mustCreate(t, etcdDataStore("in-use"))
	o := tcp("uses-in-use")
	o.Spec.DataStore = "in-use"
	mustCreate(t, o)
	ds := &kamajiv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Name: "in-use"}}
	err := env.Client.Delete(ctx(t), ds)
	expectRejected(t, err, "DataStore in-use is in use by TenantControlPlane default/uses-in-use")
	if err := env.Client.Delete(ctx(t), o); err != nil {
		t.Fatal(err)
	}
	// The TCP goes once its finalizer has run.
	if err := wait.PollUntilContextTimeout(ctx(t), 50*time.Millisecond, 20*time.Second, true, func(c context.Context) (bool, error) {
		err := env.Client.Get(c, client.ObjectKeyFromObject(o), &kamajiv1alpha1.TenantControlPlane{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatalf("the TCP was not deleted: %v", err)
	}
	if err := env.Client.Delete(ctx(t), ds); err != nil {
		t.Fatalf("an unused DataStore must be deletable: %v", err)
	}
}

func TestTenantControlPlaneWebhookRules(t *testing.T) {
	t.Run("image references", func(t *testing.T) {
		o := tcp("rule-images")
		o.Spec.ControlPlane.Deployment.RegistrySettings.Registry = "https://mirror.example.com"
		expectRejected(t, create(t, o), "spec.controlPlane.deployment.registrySettings.registry", "must be a valid image repository")
		o.Spec.ControlPlane.Deployment.RegistrySettings.Registry = "mirror.example.com:5000/k8s"
		mustCreate(t, o)
		fips := func(c *kamajiv1alpha1.TenantControlPlane) {
			c.Spec.ControlPlane.Deployment.RegistrySettings.TagSuffix = "+fips"
		}
		expectRejected(t, update(t, o, fips), "spec.kubernetes.version", "the control plane's image tag")
	})
	t.Run("name is a DNS-1035 label", func(t *testing.T) {
		expectRejected(t, create(t, tcp("tenant.example")), "metadata.name", "DNS-1035 label")
		expectRejected(t, create(t, tcp("1tenant")), "metadata.name")
		mustCreate(t, tcp("tenant-1035"))
	})
	t.Run("sleep-after annotation", func(t *testing.T) {
		o := tcp("rule-sleep")
		o.Annotations = map[string]string{kamajiv1alpha1.SleepAfterAnnotation: "soon"}
		expectRejected(t, create(t, o), "metadata.annotations[kamaji.clastix.io/sleep-after]", "is not a duration such as 15m")
		o.Annotations[kamajiv1alpha1.SleepAfterAnnotation] = "10s"
		expectRejected(t, create(t, o), "metadata.annotations[kamaji.clastix.io/sleep-after]", "shorter than the minimum, 30s")
		o.Annotations[kamajiv1alpha1.SleepAfterAnnotation] = "15m"
		mustCreate(t, o)
		// An annotation changes no generation: `kubectl annotate` is checked all the same.
		soon := func(c *kamajiv1alpha1.TenantControlPlane) {
			c.Annotations[kamajiv1alpha1.SleepAfterAnnotation] = "soon"
		}
		expectRejected(t, update(t, o, soon), "metadata.annotations[kamaji.clastix.io/sleep-after]", "is not a duration such as 15m")
		if err := update(t, o, func(c *kamajiv1alpha1.TenantControlPlane) { c.Annotations[kamajiv1alpha1.SleepAfterAnnotation] = "1h" }); err != nil {
			t.Fatalf("changing sleep-after to 1h: %v", err)
		}
	})
	t.Run("control-plane-profile annotation", func(t *testing.T) {
		o := tcp("rule-profile")
		o.Annotations = map[string]string{kamajiv1alpha1.ControlPlaneProfileAnnotation: "tiny"}
		expectRejected(t, create(t, o), "metadata.annotations[kamaji.clastix.io/control-plane-profile]", `"tiny" is not a profile (default or lean)`)
		o.Annotations[kamajiv1alpha1.ControlPlaneProfileAnnotation] = "lean"
		mustCreate(t, o)
		tiny := func(c *kamajiv1alpha1.TenantControlPlane) {
			c.Annotations[kamajiv1alpha1.ControlPlaneProfileAnnotation] = "tiny"
		}
		expectRejected(t, update(t, o, tiny), "metadata.annotations[kamaji.clastix.io/control-plane-profile]", `"tiny" is not a profile (default or lean)`)
		// Other metadata, and the profile's removal, are not held up.
		if err := update(t, o, func(c *kamajiv1alpha1.TenantControlPlane) {
			delete(c.Annotations, kamajiv1alpha1.ControlPlaneProfileAnnotation)
			c.Labels = map[string]string{"team": "a"}
		}); err != nil {
			t.Fatalf("a label and the profile's removal: %v", err)
		}
	})
	t.Run("certSANs", func(t *testing.T) {
		o := tcp("rule-sans")
		o.Spec.NetworkProfile.CertSANs = []string{"ok.example.com", "bad_name!"}
		expectRejected(t, create(t, o), "spec.networkProfile.certSANs[1]", "must be an IP address or a DNS name")
		o.Spec.NetworkProfile.CertSANs = []string{"ok.example.com", "*.example.com", "10.0.0.1", "::1"}
		mustCreate(t, o)
	})
	t.Run("dnsServiceIPs inside a service CIDR", func(t *testing.T) {
		o := tcp("rule-dns")
		o.Spec.NetworkProfile.DNSServiceIPs = []string{"10.97.0.10"}
		expectRejected(t, create(t, o), "spec.networkProfile.dnsServiceIPs[0]", "must be inside a service CIDR")
		o.Spec.NetworkProfile.DNSServiceIPs = []string{"10.96.0.53"}
		mustCreate(t, o)
	})
	t.Run("service and pod ranges", func(t *testing.T) {
		o := tcp("rule-cidrs")
		o.Spec.NetworkProfile.ServiceCIDRs = []string{"10.96.0.0/16", "10.97.0.0/16"}
		expectRejected(t, create(t, o), "spec.networkProfile.serviceCidrs[1]", "at most one CIDR per IP family")
		o.Spec.NetworkProfile.ServiceCIDRs = []string{"10.244.0.0/16"}
		o.Spec.NetworkProfile.DNSServiceIPs = []string{"10.244.0.10"}
		expectRejected(t, create(t, o), "spec.networkProfile.serviceCidrs[0]", "overlaps the pod range")
	})
	t.Run("version policy", func(t *testing.T) {
		for version, msg := range map[string]string{
			"v1.38.0": "newer than v1.37", "v2.0.0": "newer than v1.37", "stable": "semantic version",
		} {
			o := tcp("rule-version")
			o.Spec.Kubernetes.Version = version
			expectRejected(t, create(t, o), "spec.kubernetes.version", msg)
		}
		// No lower bound, as Kamaji: inside the tested window (v1.30 to v1.37) a version is
		// accepted silently, below it with a warning.
		for name, c := range map[string]struct{ version, warning string }{
			"rule-version-130": {"v1.30.14", ""},
			"rule-version-134": {"v1.34.4", ""},
			"rule-version-128": {"v1.28.15", "v1.28.15 is older than the versions this release is tested with (v1.30 to v1.37)"},
		} {
			o := tcp(name)
			o.Spec.Kubernetes.Version = c.version
			warnings, err := createWarned(t, o)
			if err != nil {
				t.Fatalf("%s must be accepted: %v", c.version, err)
			}
			got := strings.Join(warnings, "\n")
			if (c.warning == "") != (got == "") || !strings.Contains(got, c.warning) {
				t.Errorf("%s: warnings %q, want %q", c.version, got, c.warning)
			}
		}
		o := tcp("rule-version")
		o.Spec.Kubernetes.Version = "v1.35.4"
		mustCreate(t, o)
		expectRejected(t, update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.Kubernetes.Version = "v1.37.2" }),
			"spec.kubernetes.version", "one minor version at a time")
		// Patch numbers are free, as in Kamaji: the way back from a bad patch release.
		if err := update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.Kubernetes.Version = "v1.35.0" }); err != nil {
			t.Fatalf("v1.35.4 -> v1.35.0 must be accepted: %v", err)
		}
		if err := update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.Kubernetes.Version = "v1.36.1" }); err != nil {
			t.Fatalf("a one-minor upgrade must be accepted: %v", err)
		}
		expectRejected(t, update(t, o, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.Kubernetes.Version = "v1.35.4" }),
			"spec.kubernetes.version", "downgrading from v1.36.1")
	})
	t.Run("dataStore exists and its driver is served", func(t *testing.T) {
		o := tcp("rule-ds")
		o.Spec.DataStore = "missing"
		expectRejected(t, create(t, o), "spec.dataStore", `Not found: "missing"`)
		o.Spec.DataStore = "pg"
		expectRejected(t, create(t, o), "spec.dataStore", `driver "PostgreSQL", which no configured plugin serves`)
		o.Spec.DataStore = "roach"
		mustCreate(t, o)
	})
	t.Run("dataStoreOverrides", func(t *testing.T) {
		o := tcp("rule-overrides")
		o.Spec.DataStoreOverrides = []kamajiv1alpha1.DataStoreOverride{{Resource: "/events", DataStore: "events"}, {Resource: "/events", DataStore: "default"}}
		expectRejected(t, create(t, o), "spec.dataStoreOverrides[1].resource", "Duplicate value")
		o.Spec.DataStoreOverrides = []kamajiv1alpha1.DataStoreOverride{{Resource: "/events", DataStore: "mysql"}}
		expectRejected(t, create(t, o), "spec.dataStoreOverrides[0].dataStore", "must use an etcd DataStore")
		o.Spec.DataStoreOverrides = []kamajiv1alpha1.DataStoreOverride{{Resource: "/events", DataStore: "nope"}}
		expectRejected(t, create(t, o), "spec.dataStoreOverrides[0].dataStore", "Not found")
		o.Spec.DataStoreOverrides = []kamajiv1alpha1.DataStoreOverride{{Resource: "/events", DataStore: "events"}}
		mustCreate(t, o)
	})
	t.Run("preferredAddressTypes without duplicates", func(t *testing.T) {
		o := tcp("rule-addr")
		o.Spec.Kubernetes.Kubelet.PreferredAddressTypes = []kamajiv1alpha1.KubeletPreferredAddressType{"InternalIP", "Hostname", "InternalIP"}
		expectRejected(t, create(t, o), "spec.kubernetes.kubelet.preferredAddressTypes[2]", "Duplicate value")
		o.Spec.Kubernetes.Kubelet.PreferredAddressTypes = []kamajiv1alpha1.KubeletPreferredAddressType{"Hostname", "InternalIP"}
		mustCreate(t, o)
	})
	t.Run("gateway needs the Gateway API", func(t *testing.T) {
		o := tcp("rule-gateway")
		o.Spec.ControlPlane.Gateway = &kamajiv1alpha1.GatewaySpec{Hostname: "t.example.com", GatewayParentRefs: []kamajiv1alpha1.GatewayParentReference{{Name: "gw"}}}
		expectRejected(t, create(t, o), "spec.controlPlane.gateway", "does not serve the Gateway API")
		// The real standard channel: TLSRoute v1 only (v1alpha2 is no longer served).
		install, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := env.InstallGatewayAPI(install, testenv.GatewayStandard); err != nil {
			t.Fatal(err)
		}
		// Discovery reaches the manager's REST mapper asynchronously: poll until it does.
		var last error
		err := wait.PollUntilContextTimeout(ctx(t), 100*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
			last = create(t, o.DeepCopy())
			if last != nil && !strings.Contains(last.Error(), "does not serve the Gateway API") {
				return false, last
			}
			return last == nil, nil
		})
		if err != nil {
			t.Fatalf("with the Gateway API installed the TCP must be accepted: %v (last: %v)", err, last)
		}
	})
}

// createWarned creates obj and returns the warnings the apiserver sent with its answer.
func createWarned(t *testing.T, obj client.Object) ([]string, error) {
	t.Helper()
	rec := &warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandlerWithContext = rec
	c, err := client.New(cfg, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx(t), obj); err != nil {
		return rec.list(), err
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
	return rec.list(), nil
}

type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warnings) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

func TestScaleSubresource(t *testing.T) {
	o := tcp("scale")
	mustCreate(t, o)
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 0}}
	if err := env.Client.SubResource("scale").Update(ctx(t), o, client.WithSubResourceBody(scale)); err != nil {
		t.Fatalf("kubectl scale tcp --replicas=0: %v", err)
	}
	got := &kamajiv1alpha1.TenantControlPlane{}
	if err := env.Client.Get(ctx(t), client.ObjectKeyFromObject(o), got); err != nil {
		t.Fatal(err)
	}
	if r := got.Spec.ControlPlane.Deployment.Replicas; r == nil || *r != 0 {
		t.Fatalf("scale did not reach spec.controlPlane.deployment.replicas: %v", r)
	}
}
