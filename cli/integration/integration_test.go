package integration

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	corekubeconfig "github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/testenv"

	"github.com/openhcp/kamaji/cli/command"
)

var (
	plane *testenv.Plane
	cl    client.Client
	// adminKubeconfig reaches the plane as system:masters.
	adminKubeconfig string
	cacheDir        string
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	plane, err = testenv.Start(ctx, testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the plane:", err)
		return 1
	}
	defer plane.Stop()
	if err := plane.InstallCRDs(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "installing the CRDs:", err)
		return 1
	}
	if cl, err = client.New(plane.Config, client.Options{Scheme: command.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "kubectl-kamaji-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cacheDir = filepath.Join(dir, "cache")
	adminKubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := writeKubeconfig(adminKubeconfig, "admin", plane.Config.TLSClientConfig.CertData, plane.Config.TLSClientConfig.KeyData); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := seed(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "seeding:", err)
		return 1
	}
	return m.Run()
}

// writeKubeconfig writes a kubeconfig for the plane with the given client pair, its context
// named context and current.
func writeKubeconfig(path, context string, cert, key []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["plane"] = &clientcmdapi.Cluster{Server: plane.Config.Host, CertificateAuthorityData: plane.Config.TLSClientConfig.CAData}
	cfg.AuthInfos[context] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts[context] = &clientcmdapi.Context{Cluster: "plane", AuthInfo: context, Namespace: "default"}
	cfg.CurrentContext = context
	return clientcmd.WriteToFile(*cfg, path)
}

// kubectlKamaji runs the CLI in process with a kubeconfig file, as a user would.
func kubectlKamaji(t *testing.T, kubeconfig string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := command.New(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		command.Deps{Interval: 50 * time.Millisecond, Terminal: func() bool { return false }})
	root.SetArgs(append([]string{"--kubeconfig", kubeconfig, "--cache-dir", cacheDir}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func kk(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return kubectlKamaji(t, adminKubeconfig, args...)
}

func ctxT(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// newTCP creates a TCP and writes the status given, for its generation.
func newTCP(t *testing.T, name string, mutate func(*kamajiv1alpha1.TenantControlPlane)) *kamajiv1alpha1.TenantControlPlane {
	t.Helper()
	tcp := &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			DataStore:    "default",
			ControlPlane: kamajiv1alpha1.ControlPlane{Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"}},
			Kubernetes:   kamajiv1alpha1.KubernetesSpec{Version: "v1.36.3"},
		},
	}
	if err := cl.Create(ctxT(t), tcp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Delete(context.Background(), tcp) })
	tcp.Status = readyStatus(tcp)
	if mutate != nil {
		mutate(tcp)
	}
	if err := cl.Status().Update(ctxT(t), tcp); err != nil {
		t.Fatal(err)
	}
	return tcp
}

func readyStatus(tcp *kamajiv1alpha1.TenantControlPlane) kamajiv1alpha1.TenantControlPlaneStatus {
	now := metav1.Now()
	st := kamajiv1alpha1.TenantControlPlaneStatus{ObservedGeneration: tcp.Generation, ControlPlaneEndpoint: "10.96.0.7:6443"}
	st.Kubernetes.Version = kamajiv1alpha1.KubernetesVersion{Version: tcp.Spec.Kubernetes.Version, Status: ptr.To(kamajiv1alpha1.VersionReady)}
	st.Kubernetes.Deployment = kamajiv1alpha1.KubernetesDeploymentStatus{Name: tcp.Name, Namespace: tcp.Namespace, Selector: "kamaji.clastix.io/name=" + tcp.Name, Replicas: 2, AvailableReplicas: 2}
	st.Storage = kamajiv1alpha1.StorageStatus{Driver: "MySQL", DataStoreName: "default",
		Setup: kamajiv1alpha1.DataStoreSetupStatus{Schema: "t_default_" + tcp.Name, User: "u_" + tcp.Name}}
	st.KubeConfig.Admin.SecretName = corekubeconfig.AdminSecretName(tcp.Name)
	st.Certificates.CA = kamajiv1alpha1.CertificatePrivateKeyPairStatus{SecretName: tcp.Name + "-ca", Checksum: "ca-1"}
	st.Certificates.APIServer = kamajiv1alpha1.CertificatePrivateKeyPairStatus{SecretName: tcp.Name + "-api-server-certificate", Checksum: "api-1"}
	st.Conditions = []metav1.Condition{
		{Type: "Ready", Status: "True", Reason: "Ready", Message: "2/2 control plane replicas run " + tcp.Spec.Kubernetes.Version, LastTransitionTime: now},
		{Type: "DataStoreReady", Status: "True", Reason: "Provisioned", LastTransitionTime: now},
		{Type: "TenantConfigured", Status: "True", Reason: "Configured", LastTransitionTime: now},
	}
	return st
}

func getTCP(t *testing.T, name string) *kamajiv1alpha1.TenantControlPlane {
	t.Helper()
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	if err := cl.Get(ctxT(t), client.ObjectKey{Namespace: "default", Name: name}, tcp); err != nil {
		t.Fatal(err)
	}
	return tcp
}

// tenantSecrets writes the TCP's admin kubeconfig Secret, pointing at the plane itself as
// its "tenant" (plane CA, system:masters), and its CA Secret with the plane's CA.
func tenantSecrets(t *testing.T, name string) {
	t.Helper()
	conf, err := corekubeconfig.Build(plane.Config.Host, plane.Config.TLSClientConfig.CAData, "kubernetes-admin",
		plane.Config.TLSClientConfig.CertData, plane.Config.TLSClientConfig.KeyData, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: corekubeconfig.AdminSecretName(name)},
			Data: map[string][]byte{"admin.conf": conf, "super-admin.conf": conf}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name + "-ca"},
			Data: map[string][]byte{"ca.crt": plane.CA.CertPEM(), "ca.key": []byte("not shown")}},
	} {
		if err := cl.Create(ctxT(t), s); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Delete(context.Background(), s) })
	}
}

// userKubeconfig writes a kubeconfig for a user of the plane with no permission but what the
// test grants: a client certificate from the plane's CA.
func userKubeconfig(t *testing.T, user string) string {
	t.Helper()
	kp, err := plane.CA.Issue(pki.Request{CommonName: user, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	key, err := kp.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := writeKubeconfig(path, user, kp.CertPEM(), key); err != nil {
		t.Fatal(err)
	}
	return path
}

// restFor is a client config for one context of a kubeconfig file.
func restFor(t *testing.T, file, context string) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: file}, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
