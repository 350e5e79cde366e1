package datastore_test

// Integration tests of the DataStore controller: real apiserver, real plugin processes (the
// etcd plugin as it ships, the sdk's test plugin, and binaries that are not plugins at all),
// real multi-tenant etcd.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	dscontroller "github.com/openhcp/kamaji/core/controllers/datastore"
	"github.com/openhcp/kamaji/core/pluginhost"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/testkit"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	code, err := func() (int, error) {
		dir, err := os.MkdirTemp("", "kamaji-ds-test-")
		if err != nil {
			return 1, err
		}
		defer os.RemoveAll(dir)
		etcdPlugin, err := testenv.BuildPlugin(dir, "datastore-etcd", settings.KindDataStore, "etcd")
		if err != nil {
			return 1, err
		}
		testPlugin := filepath.Join(dir, "testplugin")
		if out, err := exec.Command("go", "build", "-o", testPlugin, "github.com/openhcp/kamaji/sdk/internal/testplugin").CombinedOutput(); err != nil {
			return 1, fmt.Errorf("%v: %s", err, out)
		}
		testSHA, _ := sdk.FileSHA256(testPlugin)
		sleepSHA, _ := sdk.FileSHA256("/bin/sleep")
		s := testenv.DefaultSettings()
		s.Plugins = []settings.Plugin{
			etcdPlugin,
			{Kind: settings.KindDataStore, Name: "missing", Path: filepath.Join(dir, "no-such-plugin"), SHA256: testSHA, Drivers: []string{"Missing"}},
			{Kind: settings.KindDataStore, Name: "tampered", Path: testPlugin, SHA256: strings.Repeat("ab", 32), Drivers: []string{"Tampered"}},
			{Kind: settings.KindDataStore, Name: "future", Path: testPlugin, SHA256: testSHA, Args: []string{"-protocol=99"}, Drivers: []string{"Future"}},
			{Kind: settings.KindDataStore, Name: "mute", Path: "/bin/sleep", SHA256: sleepSHA, Args: []string{"3600"}, Drivers: []string{"Mute"}},
		}
		// A fixed Secret is seen at the next recheck: sooner than the default, for the test.
		// Usage is counted every few seconds, one tenant per pass, and each count written
		// (usage_test.go tells the counts apart by their date).
		env, err = testenv.StartEnv(ctx, s, testenv.Options{DataStoreRecheck: 2 * time.Second,
			DataStoreUsage: dscontroller.UsagePolicy{Interval: 3 * time.Second, BatchTenants: 1, PassCalls: 1, Rewrite: time.Nanosecond}})
		cancel()
		if err != nil {
			return 1, err
		}
		code := m.Run()
		env.StopAfter(code)
		return code, nil
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "test plane:", err)
	}
	os.Exit(code)
}

func ctxT(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	if err := wait.PollUntilContextTimeout(ctxT(t), 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok, nil
	}); err != nil {
		t.Fatalf("timed out waiting for %s (last: %v)", what, last)
	}
}

func basicAuth(name, driver string) *kamajiv1alpha1.DataStore {
	return &kamajiv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: kamajiv1alpha1.DataStoreSpec{Driver: driver, Endpoints: []string{"127.0.0.1:1"},
			BasicAuth: &kamajiv1alpha1.BasicAuth{Username: kamajiv1alpha1.ContentRef{Content: []byte("u")}, Password: kamajiv1alpha1.ContentRef{Content: []byte("p")}}},
	}
}

func condition(ctx context.Context, name, condType string) (*metav1.Condition, *kamajiv1alpha1.DataStore, error) {
	ds := &kamajiv1alpha1.DataStore{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, ds); err != nil {
		return nil, nil, err
	}
	return meta.FindStatusCondition(ds.Status.Conditions, condType), ds, nil
}

// statusReady reads status.ready as stored (Kamaji's printer column reads it): its value and
// whether it is there at all, false included.
func statusReady(ctx context.Context, t *testing.T, name string) (ready, present bool) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(kamajiv1alpha1.GroupVersion.WithKind("DataStore"))
	if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
		t.Fatal(err)
	}
	ready, present, err := unstructured.NestedBool(u.Object, "status", "ready")
	if err != nil {
		t.Fatalf("status.ready: %v", err)
	}
	return ready, present
}

func TestPluginFailuresBecomeConditions(t *testing.T) {
	for driver, want := range map[string]struct{ reason, mention string }{
		"Missing":  {pluginhost.ReasonBinaryMissing, "no-such-plugin"},
		"Tampered": {pluginhost.ReasonChecksumMismatch, "sha256"},
		"Future":   {pluginhost.ReasonProtocolMismatch, "protocol"},
		"Mute":     {pluginhost.ReasonHandshakeFailed, "sleep"},
	} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			name := strings.ToLower(driver)
			if err := env.Client.Create(ctxT(t), basicAuth(name, driver)); err != nil {
				t.Fatal(err)
			}
			eventually(t, "PluginReady=False with reason "+want.reason, func(ctx context.Context) (bool, error) {
				c, _, err := condition(ctx, name, "PluginReady")
				if err != nil || c == nil {
					return false, err
				}
				return c.Status == metav1.ConditionFalse && c.Reason == want.reason && strings.Contains(c.Message, want.mention), fmt.Errorf("%+v", c)
			})
			c, _, _ := condition(ctxT(t), name, "Ready")
			if c == nil || c.Status != metav1.ConditionFalse {
				t.Errorf("Ready must be False: %+v", c)
			}
			if ready, present := statusReady(ctxT(t), t, name); !present || ready {
				t.Errorf("status.ready = %v (present %v), want an explicit false", ready, present)
			}
		})
	}
}

func secretRefDataStore(name string, e *testkit.Etcd, secret string) *kamajiv1alpha1.DataStore {
	ref := func(key string) kamajiv1alpha1.ContentRef {
		return kamajiv1alpha1.ContentRef{SecretRef: &kamajiv1alpha1.SecretReference{Name: secret, Namespace: "default", KeyPath: key}}
	}
	caKey := ref("ca.key")
	return &kamajiv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: kamajiv1alpha1.DataStoreSpec{
			Driver: "etcd", Endpoints: e.Endpoints,
			TLSConfig: &kamajiv1alpha1.TLSConfig{
				CertificateAuthority: kamajiv1alpha1.CertKeyPair{Certificate: ref("ca.crt"), PrivateKey: &caKey},
				ClientCertificate:    &kamajiv1alpha1.ClientCertificate{Certificate: ref("tls.crt"), PrivateKey: ref("tls.key")},
			},
		},
	}
}

// tcpOn is a TCP in namespace default on the DataStore.
func tcpOn(name, dataStore string) *kamajiv1alpha1.TenantControlPlane {
	return &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			DataStore:    dataStore,
			ControlPlane: kamajiv1alpha1.ControlPlane{Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"}},
			Kubernetes:   kamajiv1alpha1.KubernetesSpec{Version: "v1.37.2"},
		},
	}
}

func TestSecretReferencesAndUsedBy(t *testing.T) {
	t.Parallel()
	e := testkit.StartEtcd(t)
	ds := secretRefDataStore("referenced", e, "etcd-root")
	if err := env.Client.Create(ctxT(t), ds); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ConfigValid=False naming the missing Secret", func(ctx context.Context) (bool, error) {
		c, _, err := condition(ctx, "referenced", "ConfigValid")
		if err != nil || c == nil {
			return false, err
		}
		return c.Reason == "SecretMissing" && strings.Contains(c.Message, "default/etcd-root"), fmt.Errorf("%+v", c)
	})

	// A TCP on it waits with a reason, and proceeds once the Secret exists.
	tcp := tcpOn("on-referenced", "referenced")
	if err := env.Client.Create(ctxT(t), tcp); err != nil {
		t.Fatal(err)
	}
	tcpCondition := func(ctx context.Context) *metav1.Condition {
		got := &kamajiv1alpha1.TenantControlPlane{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(tcp), got); err != nil {
			return nil
		}
		return meta.FindStatusCondition(got.Status.Conditions, kamajiv1alpha1.ConditionDataStoreReady)
	}
	eventually(t, "the TCP to report the missing Secret", func(ctx context.Context) (bool, error) {
		c := tcpCondition(ctx)
		return c != nil && c.Reason == "DataStoreSecretMissing", fmt.Errorf("%+v", c)
	})
	eventually(t, "usedBy to list the TCP", func(ctx context.Context) (bool, error) {
		_, ds, err := condition(ctx, "referenced", "Ready")
		return err == nil && slices.Equal(ds.Status.UsedBy, []string{"default/on-referenced"}), fmt.Errorf("%v", ds.Status.UsedBy)
	})

	// The root client certificate arrives in a Secret of the user's (not labelled for us).
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "etcd-root", Namespace: "default"},
		Data: map[string][]byte{"ca.crt": e.CACert, "ca.key": e.CAKey, "tls.crt": e.RootCert, "tls.key": []byte("not a key")}}
	if err := env.Client.Create(ctxT(t), secret); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the broken key to be reported", func(ctx context.Context) (bool, error) {
		c, _, err := condition(ctx, "referenced", "ConfigValid")
		return err == nil && c != nil && c.Status == metav1.ConditionFalse && c.Reason != "SecretMissing", fmt.Errorf("%+v", c)
	})
	if ready, present := statusReady(ctxT(t), t, "referenced"); !present || ready {
		t.Errorf("status.ready = %v (present %v) with a broken key", ready, present)
	}
	// Fixing the Secret is picked up without touching the DataStore.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := &corev1.Secret{}
		if err := env.Client.Get(ctxT(t), client.ObjectKeyFromObject(secret), s); err != nil {
			return err
		}
		s.Data["tls.key"] = e.RootKey
		return env.Client.Update(ctxT(t), s)
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the DataStore to become Ready", func(ctx context.Context) (bool, error) {
		c, _, err := condition(ctx, "referenced", "Ready")
		return err == nil && c != nil && c.Status == metav1.ConditionTrue, fmt.Errorf("%+v", c)
	})
	if ready, present := statusReady(ctxT(t), t, "referenced"); !present || !ready {
		t.Errorf("status.ready = %v (present %v) with Ready=True", ready, present)
	}
	eventually(t, "the TCP to be provisioned", func(ctx context.Context) (bool, error) {
		c := tcpCondition(ctx)
		return c != nil && c.Status == metav1.ConditionTrue, fmt.Errorf("%+v", c)
	})

	// Deleting the DataStore is refused while the TCP uses it; the message names it.
	err := env.Client.Delete(ctxT(t), ds)
	if err == nil || !strings.Contains(err.Error(), "default/on-referenced") {
		t.Fatalf("deleting a DataStore in use: %v", err)
	}
	if err := env.Client.Delete(ctxT(t), tcp); err != nil {
		t.Fatal(err)
	}
	eventually(t, "usedBy to empty once the TCP is gone", func(ctx context.Context) (bool, error) {
		_, ds, err := condition(ctx, "referenced", "Ready")
		return err == nil && len(ds.Status.UsedBy) == 0, fmt.Errorf("%v", ds.Status.UsedBy)
	})
}

func TestUnreachableDataStore(t *testing.T) {
	t.Parallel()
	e := testkit.StartEtcd(t)
	ds := secretRefDataStore("unreachable", e, "")
	ds.Spec.TLSConfig.CertificateAuthority = kamajiv1alpha1.CertKeyPair{
		Certificate: kamajiv1alpha1.ContentRef{Content: e.CACert}, PrivateKey: &kamajiv1alpha1.ContentRef{Content: e.CAKey}}
	ds.Spec.TLSConfig.ClientCertificate = &kamajiv1alpha1.ClientCertificate{
		Certificate: kamajiv1alpha1.ContentRef{Content: e.RootCert}, PrivateKey: kamajiv1alpha1.ContentRef{Content: e.RootKey}}
	ds.Spec.Endpoints = []string{"127.0.0.1:1"}
	if err := env.Client.Create(ctxT(t), ds); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ConfigValid=False DataStoreUnreachable", func(ctx context.Context) (bool, error) {
		c, _, err := condition(ctx, "unreachable", "ConfigValid")
		return err == nil && c != nil && c.Reason == "DataStoreUnreachable", fmt.Errorf("%+v", c)
	})
}

// spec.parameters reach the plugin as they are; one it refuses is named in ConfigValid.
func TestParametersReachThePlugin(t *testing.T) {
	t.Parallel()
	e := testkit.StartEtcd(t)
	ds := secretRefDataStore("parameters", e, "")
	ds.Spec.TLSConfig.CertificateAuthority = kamajiv1alpha1.CertKeyPair{
		Certificate: kamajiv1alpha1.ContentRef{Content: e.CACert}, PrivateKey: &kamajiv1alpha1.ContentRef{Content: e.CAKey}}
	ds.Spec.TLSConfig.ClientCertificate = &kamajiv1alpha1.ClientCertificate{
		Certificate: kamajiv1alpha1.ContentRef{Content: e.RootCert}, PrivateKey: kamajiv1alpha1.ContentRef{Content: e.RootKey}}
	ds.Spec.Parameters = map[string]string{"sslmode": "require"}
	if err := env.Client.Create(ctxT(t), ds); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ConfigValid=False ConfigInvalid naming parameters.sslmode", func(ctx context.Context) (bool, error) {
		c, _, err := condition(ctx, "parameters", "ConfigValid")
		return err == nil && c != nil && c.Status == metav1.ConditionFalse && c.Reason == "ConfigInvalid" && strings.Contains(c.Message, "parameters.sslmode"), fmt.Errorf("%+v", c)
	})
	// Without the parameter the etcd driver does not know, the same DataStore is valid.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		latest := &kamajiv1alpha1.DataStore{}
		if err := env.Client.Get(ctxT(t), client.ObjectKey{Name: "parameters"}, latest); err != nil {
			return err
		}
		latest.Spec.Parameters = nil
		return env.Client.Update(ctxT(t), latest)
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "ConfigValid=True", func(ctx context.Context) (bool, error) {
		c, _, err := condition(ctx, "parameters", "ConfigValid")
		return err == nil && c != nil && c.Status == metav1.ConditionTrue, fmt.Errorf("%+v", c)
	})
}
