// Package testdatastore builds the DataStores integration tests use. It is apart from testenv,
// which modules without an etcd client import too.
package testdatastore

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// Etcd is a DataStore of the etcd driver on a test's etcd: TLS with the etcd's CA
// (the key included, to sign the tenants' client certificates) and its root client certificate.
func Etcd(name string, e *testkit.Etcd) *kamajiv1alpha1.DataStore {
	return &kamajiv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: kamajiv1alpha1.DataStoreSpec{
			Driver: "etcd", Endpoints: e.Endpoints,
			TLSConfig: &kamajiv1alpha1.TLSConfig{
				CertificateAuthority: kamajiv1alpha1.CertKeyPair{
					Certificate: kamajiv1alpha1.ContentRef{Content: e.CACert},
					PrivateKey:  &kamajiv1alpha1.ContentRef{Content: e.CAKey},
				},
				ClientCertificate: &kamajiv1alpha1.ClientCertificate{
					Certificate: kamajiv1alpha1.ContentRef{Content: e.RootCert},
					PrivateKey:  kamajiv1alpha1.ContentRef{Content: e.RootKey},
				},
			},
		},
	}
}
