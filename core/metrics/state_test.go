package metrics_test

import (
	"context"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/exposure"
	"github.com/openhcp/kamaji/core/metrics"
	"github.com/openhcp/kamaji/core/metrics/metricstest"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/secretdata"
	"github.com/openhcp/kamaji/core/tenantpki"
	"github.com/openhcp/kamaji/core/testenv"
)

var plane *testenv.Plane

func TestMain(m *testing.M) { os.Exit(testenv.RunWithPlane(m, &plane)) }

// gather scrapes what the manager's /metrics serves: the registry, then the state metrics.
func gather(t *testing.T) metricstest.Families {
	t.Helper()
	srv := httptest.NewServer(metrics.WithState(promhttp.HandlerFor(ctrlmetrics.Registry, promhttp.HandlerOpts{})))
	defer srv.Close()
	f, err := metricstest.Scrape(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The state metrics read the cache's stores in place: nothing before the cache has synced, then
// each TCP with the certificates of its own namespace, even where another namespace holds a TCP
// and Secrets of the same names.
func TestStateMetricsReadTheCache(t *testing.T) {
	ctx := t.Context()
	if err := plane.InstallCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := kamajiv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(plane.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	// As in the manager: the cache drops the Secrets' data once the metrics have read it.
	informers, err := cache.New(plane.Config, cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Transform: secretdata.Strip(metrics.ObserveSecret)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	metrics.ReadFrom(informers)

	for _, name := range []string{"kamaji_tenant_control_planes_current", "kamaji_datastores_current"} {
		if v, ok := gather(t).Value(name, nil); ok {
			t.Fatalf("%s = %v exported before the cache synced", name, v)
		}
	}

	expiries := map[string]time.Time{"team-a": time.Now().Add(10 * 365 * 24 * time.Hour), "team-b": time.Now().Add(400 * 24 * time.Hour)}
	for ns, until := range expiries {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		tcp := &kamajiv1alpha1.TenantControlPlane{
			ObjectMeta: metav1.ObjectMeta{Name: "shared-name", Namespace: ns},
			Spec: kamajiv1alpha1.TenantControlPlaneSpec{
				ControlPlane: kamajiv1alpha1.ControlPlane{Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"}},
				Kubernetes:   kamajiv1alpha1.KubernetesSpec{Version: "v1.37.2"},
			},
		}
		if err := c.Create(ctx, tcp); err != nil {
			t.Fatal(err)
		}
		ca, err := pki.NewCA("kubernetes", time.Until(until), pki.ECDSAP256)
		if err != nil {
			t.Fatal(err)
		}
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: tenantpki.SecretName(tcp.Name, tenantpki.CA), Namespace: ns, Labels: exposure.Labels(tcp)},
			Data:       map[string][]byte{tenantpki.KeyCACert: ca.CertPEM()},
		}
		if err := c.Create(ctx, secret); err != nil {
			t.Fatal(err)
		}
		expiries[ns] = ca.Cert.NotAfter
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = informers.Start(cctx) }()
	var f metricstest.Families
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		f = gather(t)
		v, _ := f.Value("kamaji_tenant_control_planes_current", nil)
		return v == 2, nil
	}); err != nil {
		v, _ := f.Value("kamaji_tenant_control_planes_current", nil)
		t.Fatalf("kamaji_tenant_control_planes_current = %v, want 2: %v", v, err)
	}
	for ns, notAfter := range expiries {
		self := map[string]string{"namespace": ns, "name": "shared-name"}
		if v, _ := f.Value("kamaji_certificates_current", self); v != 1 {
			t.Errorf("kamaji_certificates_current%v = %v, want 1", self, v)
		}
		cert := map[string]string{"namespace": ns, "name": "shared-name", "secret": "shared-name-ca", "key": tenantpki.KeyCACert}
		if v, ok := f.Value("kamaji_certificate_expiration_timestamp_seconds", cert); !ok || v != float64(notAfter.Unix()) {
			t.Errorf("kamaji_certificate_expiration_timestamp_seconds%v = %v (found %v), want %d", cert, v, ok, notAfter.Unix())
		}
		unknown := map[string]string{"namespace": ns, "name": "shared-name", "status": string(kamajiv1alpha1.VersionUnknown)}
		if v, _ := f.Value("kamaji_tenant_control_plane_status", unknown); v != 1 {
			t.Errorf("kamaji_tenant_control_plane_status%v = %v, want 1", unknown, v)
		}
	}
	// The cache holds the Secrets without their data.
	cached := &corev1.Secret{}
	if err := informers.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "shared-name-ca"}, cached); err != nil || cached.Data != nil {
		t.Errorf("the cached CA Secret: %v, data %q", err, cached.Data)
	}
	if v, ok := f.Value("kamaji_datastores_current", nil); !ok || v != 0 {
		t.Errorf("kamaji_datastores_current = %v (found %v), want 0", v, ok)
	}
}
