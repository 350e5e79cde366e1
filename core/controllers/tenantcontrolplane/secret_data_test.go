package tenantcontrolplane_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/controlplane"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// tenantSecrets lists a TCP's Secrets as the API holds them, by name.
func tenantSecrets(ctx context.Context, t *testing.T, tcp string) map[string]corev1.Secret {
	t.Helper()
	list := &corev1.SecretList{}
	if err := env.Client.List(ctx, list, client.InNamespace("default"), client.MatchingLabels{
		kamajiv1alpha1.NameLabel: tcp, kamajiv1alpha1.ManagedByLabel: kamajiv1alpha1.ManagedByValue,
	}); err != nil {
		t.Fatal(err)
	}
	out := map[string]corev1.Secret{}
	for _, s := range list.Items {
		out[s.Name] = s
	}
	return out
}

// The manager's cache keeps the TCPs' Secrets without their data. A pass that finds them at a
// version it has not seen (changed by someone else, as after a restart) reads the data from the
// API and keeps every certificate, key and kubeconfig as it is; another tenant's Secrets are
// not touched.
func TestSecretDataIsReadFromTheAPI(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	const ds = "secret-data"
	if err := env.Client.Create(ctxT(t), dataStoreFor(ds, etcd)); err != nil {
		t.Fatal(err)
	}
	names := []string{"data-a", "data-b"}
	for _, name := range names {
		tcp := newTCP(name, "v1.36.1")
		tcp.Spec.DataStore = ds
		if err := env.Client.Create(ctxT(t), tcp); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range names {
		eventually(t, name+"'s certificates, kubeconfigs and Deployment", func(ctx context.Context) (bool, error) {
			tcp := getTCP(ctx, t, name)
			c := tcp.Status.Conditions
			return meta.IsStatusConditionTrue(c, kamajiv1alpha1.ConditionCertificatesReady) &&
				meta.IsStatusConditionTrue(c, kamajiv1alpha1.ConditionKubeconfigsReady) &&
				meta.IsStatusConditionTrue(c, kamajiv1alpha1.ConditionDataStoreReady) &&
				tcp.Status.Kubernetes.Deployment.Name == name, fmt.Errorf("conditions %v", c)
		})
	}

	before := tenantSecrets(ctxT(t), t, "data-a")
	other := tenantSecrets(ctxT(t), t, "data-b")
	if len(before) < 10 {
		t.Fatalf("data-a has %d Secrets, want at least 10", len(before))
	}
	cached := env.Manager.GetClient()
	for name, s := range before {
		if len(s.Data) == 0 {
			t.Fatalf("Secret %s has no data in the API", name)
		}
		c := &corev1.Secret{}
		if err := cached.Get(ctxT(t), client.ObjectKeyFromObject(&s), c); err != nil {
			t.Fatal(err)
		}
		if c.Data != nil {
			t.Errorf("the manager's cache holds the data of Secret %s", name)
		}
	}
	checksum := getDeployment(ctxT(t), t, "data-a").Spec.Template.Annotations[controlplane.SecretsChecksumAnnotation]

	// Every Secret of data-a at a new version, then a pass known to have run after it.
	for name := range before {
		annotateSecret(t, name, map[string]string{"test.kamaji/touched": "yes"})
	}
	forcePass(t, "data-a", 1)

	after := tenantSecrets(ctxT(t), t, "data-a")
	for name, s := range before {
		a, ok := after[name]
		if !ok {
			t.Errorf("Secret %s is gone", name)
			continue
		}
		for k, v := range s.Data {
			if !bytes.Equal(a.Data[k], v) {
				t.Errorf("Secret %s: %s changed after the pass", name, k)
			}
		}
		if a.Annotations["test.kamaji/touched"] != "yes" {
			t.Errorf("Secret %s lost the user's annotation", name)
		}
	}
	if got := getDeployment(ctxT(t), t, "data-a").Spec.Template.Annotations[controlplane.SecretsChecksumAnnotation]; got != checksum {
		t.Errorf("the pods' Secrets checksum changed from %s to %s", checksum, got)
	}
	for name, s := range tenantSecrets(ctxT(t), t, "data-b") {
		if s.ResourceVersion != other[name].ResourceVersion {
			t.Errorf("the other tenant's Secret %s changed", name)
		}
	}
}
