package controlplane

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Every kubeadm path lands from the right Secret key, read-only, in exactly the containers
// that need it.
func TestSecretFilesLayout(t *testing.T) {
	in := etcdInput()
	d := mustBuild(t, in)
	s := in.Secrets
	const api, kcm, sched = APIServerContainer, ControllerManagerContainer, SchedulerContainer

	tests := []struct {
		path, secret, key string
		in                []string
	}{
		{"/etc/kubernetes/pki/ca.crt", s.CA, KeyCACert, []string{api, kcm}},
		{"/etc/kubernetes/pki/ca.key", s.CA, KeyCAKey, []string{kcm}},
		{"/etc/kubernetes/pki/apiserver.crt", s.APIServer, KeyAPIServerCert, []string{api}},
		{"/etc/kubernetes/pki/apiserver.key", s.APIServer, KeyAPIServerKey, []string{api}},
		{"/etc/kubernetes/pki/apiserver-kubelet-client.crt", s.APIServerKubeletClient, KeyAPIServerKubeletClientCert, []string{api}},
		{"/etc/kubernetes/pki/apiserver-kubelet-client.key", s.APIServerKubeletClient, KeyAPIServerKubeletClientKey, []string{api}},
		{"/etc/kubernetes/pki/front-proxy-ca.crt", s.FrontProxyCA, KeyFrontProxyCACert, []string{api, kcm}},
		{"/etc/kubernetes/pki/front-proxy-client.crt", s.FrontProxyClient, KeyFrontProxyClientCert, []string{api}},
		{"/etc/kubernetes/pki/front-proxy-client.key", s.FrontProxyClient, KeyFrontProxyClientKey, []string{api}},
		{"/etc/kubernetes/pki/sa.pub", s.ServiceAccount, KeyServiceAccountPublicKey, []string{api}},
		{"/etc/kubernetes/pki/sa.key", s.ServiceAccount, KeyServiceAccountPrivateKey, []string{api, kcm}},
		{"/etc/kubernetes/pki/etcd/ca.crt", in.Etcd.CertSecret, KeyDataStoreCACert, []string{api}},
		{"/etc/kubernetes/pki/etcd/server.crt", in.Etcd.CertSecret, KeyDataStoreClientCert, []string{api}},
		{"/etc/kubernetes/pki/etcd/server.key", in.Etcd.CertSecret, KeyDataStoreClientKey, []string{api}},
		{"/etc/kubernetes/controller-manager.conf", s.ControllerManagerKubeconfig, KeyControllerManagerKubeconfig, []string{kcm}},
		{"/etc/kubernetes/scheduler.conf", s.SchedulerKubeconfig, KeySchedulerKubeconfig, []string{sched}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			for _, name := range []string{api, kcm, sched} {
				m, ok := mountAt(findContainer(t, d, name), tt.path)
				if ok != slices.Contains(tt.in, name) {
					t.Errorf("%s mounts %s: %v, want %v", name, tt.path, ok, !ok)
				}
				if !ok {
					continue
				}
				if !m.ReadOnly || m.SubPath != tt.key {
					t.Errorf("%s: mount %+v, want read-only subPath %s", name, m, tt.key)
				}
				v := findVolume(t, d, m.Name)
				if v.Secret == nil || v.Secret.SecretName != tt.secret {
					t.Fatalf("%s comes from %+v, want Secret %s", tt.path, v.VolumeSource, tt.secret)
				}
				if !slices.Contains(v.Secret.Items, corev1.KeyToPath{Key: tt.key, Path: tt.key}) {
					t.Errorf("volume %s does not project key %s: %+v", v.Name, tt.key, v.Secret.Items)
				}
			}
		})
	}
}

func TestSecretVolumes(t *testing.T) {
	in := etcdInput()
	d := mustBuild(t, in)
	secrets := map[string]bool{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret == nil {
			t.Errorf("volume %s is not a Secret", v.Name)
			continue
		}
		if secrets[v.Secret.SecretName] {
			t.Errorf("Secret %s has two volumes", v.Secret.SecretName)
		}
		secrets[v.Secret.SecretName] = true
		if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o440 {
			t.Errorf("volume %s mode = %v, want 0440", v.Name, v.Secret.DefaultMode)
		}
	}
	if len(secrets) != 9 {
		t.Errorf("%d Secret volumes, want 8 PKI/kubeconfig + 1 datastore", len(secrets))
	}
	// The front-proxy CA key signs nothing in the pod: it must not even reach the node.
	for _, it := range findVolume(t, d, volumeFrontProxyCA).Secret.Items {
		if it.Key == KeyFrontProxyCAKey {
			t.Error("front-proxy CA key projected into the pod")
		}
	}
}

// During a CA rotation's overlap the components trust, and publish to pods, the bundle of the
// new and the previous CA; the CSR signer keeps the new CA alone.
func TestCATrustBundleDuringOverlap(t *testing.T) {
	in := etcdInput()
	in.CATrustBundle = true
	d := mustBuild(t, in)
	api := findContainer(t, d, APIServerContainer)
	cm := findContainer(t, d, ControllerManagerContainer)
	for _, want := range []struct {
		c    corev1.Container
		flag string
	}{
		{api, "--client-ca-file=/etc/kubernetes/pki/ca-bundle.crt"},
		{cm, "--client-ca-file=/etc/kubernetes/pki/ca-bundle.crt"},
		{cm, "--root-ca-file=/etc/kubernetes/pki/ca-bundle.crt"},
		{cm, "--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt"},
	} {
		if !slices.Contains(want.c.Args, want.flag) {
			t.Errorf("%s: no %s in %q", want.c.Name, want.flag, want.c.Args)
		}
		if _, ok := mountAt(want.c, "/etc/kubernetes/pki/ca-bundle.crt"); !ok {
			t.Errorf("%s does not mount the bundle", want.c.Name)
		}
	}
	v := findVolume(t, d, volumeCA)
	if keys := itemKeys(v); !slices.Contains(keys, KeyCABundle) {
		t.Errorf("CA volume items %v", keys)
	}
	// Outside an overlap the key may not exist: it must not be projected (the pod would not start).
	d = mustBuild(t, etcdInput())
	if keys := itemKeys(findVolume(t, d, volumeCA)); slices.Contains(keys, KeyCABundle) {
		t.Errorf("CA volume items %v without an overlap", keys)
	}
	if _, ok := mountAt(findContainer(t, d, APIServerContainer), "/etc/kubernetes/pki/ca-bundle.crt"); ok {
		t.Error("the bundle is mounted without an overlap")
	}
}

func itemKeys(v corev1.Volume) []string {
	var out []string
	for _, it := range v.Secret.Items {
		out = append(out, it.Key)
	}
	return out
}
