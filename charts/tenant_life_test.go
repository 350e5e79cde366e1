package charts_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// checkTenantLife runs a tenant's whole admin-side life through the manager of the install
// test, which holds the chart's ServiceAccount credentials: a DataStore on a real etcd (its
// certificates in Secrets of the release namespace, as a platform team keeps them), two
// TenantControlPlanes in tenantNS provisioned up to their Deployment (no kubelet runs: no pod
// starts), one deleted. A permission the chart lacks stops a step here, and the manager's log
// shows the refusal. cl is the admin client: it plays the user and looks at the results.
func checkTenantLife(ctx context.Context, t *testing.T, cl client.Client, tenantNS, releaseNS string) {
	etcd := testkit.StartEtcd(t)
	root := etcd.Client(t)

	certs := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac-etcd-certs", Namespace: releaseNS},
		Data:       map[string][]byte{"ca.crt": etcd.CACert, "ca.key": etcd.CAKey, "tls.crt": etcd.RootCert, "tls.key": etcd.RootKey},
	}
	ref := func(key string) *kamajiv1alpha1.SecretReference {
		return &kamajiv1alpha1.SecretReference{Name: certs.Name, Namespace: releaseNS, KeyPath: key}
	}
	ds := &kamajiv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac-etcd"},
		Spec: kamajiv1alpha1.DataStoreSpec{
			Driver: "etcd", Endpoints: etcd.Endpoints,
			TLSConfig: &kamajiv1alpha1.TLSConfig{
				CertificateAuthority: kamajiv1alpha1.CertKeyPair{
					Certificate: kamajiv1alpha1.ContentRef{SecretRef: ref("ca.crt")},
					PrivateKey:  &kamajiv1alpha1.ContentRef{SecretRef: ref("ca.key")},
				},
				ClientCertificate: &kamajiv1alpha1.ClientCertificate{
					Certificate: kamajiv1alpha1.ContentRef{SecretRef: ref("tls.crt")},
					PrivateKey:  kamajiv1alpha1.ContentRef{SecretRef: ref("tls.key")},
				},
			},
		},
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenantNS}}
	for _, o := range []client.Object{certs, ds, ns} {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	poll(ctx, t, "DataStore rbac-etcd Ready (the manager reads its Secrets and runs the etcd plugin)", func() (bool, error) {
		got := &kamajiv1alpha1.DataStore{}
		if err := cl.Get(ctx, client.ObjectKeyFromObject(ds), got); err != nil {
			return false, err
		}
		return meta.IsStatusConditionTrue(got.Status.Conditions, kamajiv1alpha1.ConditionReady), nil
	})

	names := []string{"tenant-a", "tenant-b"}
	for _, name := range names {
		tcp := &kamajiv1alpha1.TenantControlPlane{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tenantNS},
			Spec: kamajiv1alpha1.TenantControlPlaneSpec{
				DataStore:    ds.Name,
				ControlPlane: kamajiv1alpha1.ControlPlane{Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"}},
				Kubernetes:   kamajiv1alpha1.KubernetesSpec{Version: "v1.36.1"},
			},
		}
		if err := cl.Create(ctx, tcp); err != nil {
			t.Fatalf("creating TCP %s: %v", name, err)
		}
	}
	tcps := map[string]*kamajiv1alpha1.TenantControlPlane{}
	for _, name := range names {
		tcps[name] = waitProvisioned(ctx, t, cl, client.ObjectKey{Namespace: tenantNS, Name: name})
	}

	// Something in each slice, as a tenant apiserver would have written.
	for _, tcp := range tcps {
		if _, err := root.Put(ctx, slicePrefix(tcp)+"registry/probe", tcp.Name); err != nil {
			t.Fatal(err)
		}
	}

	gone, kept := tcps["tenant-a"], tcps["tenant-b"]
	if err := cl.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "TCP tenant-a to be gone (the manager deprovisions its slice and releases the finalizer)", func() (bool, error) {
		err := cl.Get(ctx, client.ObjectKeyFromObject(gone), &kamajiv1alpha1.TenantControlPlane{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if n := keysUnder(ctx, t, root, slicePrefix(gone)); n != 0 {
		t.Errorf("%d keys of the deleted TCP remain under %s", n, slicePrefix(gone))
	}
	if _, err := root.UserGet(ctx, gone.Spec.DataStoreUsername); err == nil {
		t.Errorf("the deleted TCP's etcd user %s is still there", gone.Spec.DataStoreUsername)
	}
	// Tenant data is sacred: the other tenant's slice and user are untouched.
	if n := keysUnder(ctx, t, root, slicePrefix(kept)); n == 0 {
		t.Errorf("the slice of TCP tenant-b (%s) was emptied by the deletion of tenant-a", slicePrefix(kept))
	}
	if _, err := root.UserGet(ctx, kept.Spec.DataStoreUsername); err != nil {
		t.Errorf("the etcd user of TCP tenant-b: %v", err)
	}
	if err := cl.Get(ctx, client.ObjectKeyFromObject(kept), &kamajiv1alpha1.TenantControlPlane{}); err != nil {
		t.Errorf("TCP tenant-b after the deletion of tenant-a: %v", err)
	}
}

// waitProvisioned waits until the manager has provisioned the TCP's admin side: its slice,
// certificates and kubeconfigs (their conditions True), its Secrets, Service and Deployment,
// each owned by the TCP.
func waitProvisioned(ctx context.Context, t *testing.T, cl client.Client, key client.ObjectKey) *kamajiv1alpha1.TenantControlPlane {
	t.Helper()
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := cl.Get(ctx, key, tcp); err != nil {
			return false, err
		}
		for _, c := range []string{kamajiv1alpha1.ConditionDataStoreReady, kamajiv1alpha1.ConditionCertificatesReady, kamajiv1alpha1.ConditionKubeconfigsReady} {
			if !meta.IsStatusConditionTrue(tcp.Status.Conditions, c) {
				return false, nil
			}
		}
		return tcp.Status.Kubernetes.Deployment.Name == key.Name, nil
	})
	if err != nil {
		t.Fatalf("waiting for TCP %s provisioned up to its Deployment: %v; conditions %+v", key, err, tcp.Status.Conditions)
	}
	owned := func(o client.Object) {
		t.Helper()
		if err := cl.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: o.GetName()}, o); err != nil {
			t.Errorf("%T %s/%s of TCP %s: %v", o, key.Namespace, o.GetName(), key.Name, err)
			return
		}
		refs := o.GetOwnerReferences()
		if len(refs) != 1 || refs[0].UID != tcp.UID {
			t.Errorf("%T %s is not owned by TCP %s: %v", o, o.GetName(), key.Name, refs)
		}
	}
	owned(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: key.Name}})
	owned(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: key.Name}})
	for _, s := range []string{"-ca", "-api-server-certificate", "-datastore-certificate", "-admin-kubeconfig"} {
		owned(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: key.Name + s}})
	}
	if tcp.Spec.DataStoreSchema == "" || tcp.Spec.DataStoreUsername == "" {
		t.Fatalf("TCP %s has no datastore schema or user: %+v", key, tcp.Spec)
	}
	return tcp
}

// slicePrefix is the etcd prefix of a TCP's slice, as the etcd plugin lays it out.
func slicePrefix(tcp *kamajiv1alpha1.TenantControlPlane) string {
	return "/" + tcp.Spec.DataStoreSchema + "/"
}

func keysUnder(ctx context.Context, t *testing.T, root *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := root.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}
