package local_test

// A CA rotation with overlap, seen by a node that joined before it: the node agent (which,
// like a kubelet, keeps the CA it got at join and renews its client certificate through CSRs)
// must stay Ready while the tenant CA is replaced, through the overlap and after the old CA
// is dropped; clients of the old CA keep working during the overlap and are refused after it,
// and a client that only trusts the old CA still verifies the apiserver (the cross-signed CA).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/tenantpki"

	"github.com/openhcp/kamaji/cmd/internal/local"
)

func init() {
	registerPlaneSubtest("a node joined before a CA rotation stays Ready through it and after it", testCARotation)
}

const (
	caRotTenant = "tenant-ca-rotation"
	caRotNode   = "e2e-node-ca"
	// The controller manager signs node certificates for 3 minutes (backdated 5 minutes, as its
	// signer does for short ones): the node renews every 0.6–2.2 minutes, within the test.
	caRotSigningDuration = "--cluster-signing-duration=3m"
)

func testCARotation(t *testing.T, e *e2e) {
	start := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }

	tcp := local.SampleTCP(caRotTenant, "default")
	tcp.Spec.ControlPlane.Deployment.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{
		ControllerManager: kamajiv1alpha1.ExtraArgs{caRotSigningDuration},
	}
	if err := e.cl.Create(ctx(t), tcp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.deleteTCP(t, caRotTenant) })
	e.waitStatus(t, caRotTenant, kamajiv1alpha1.VersionReady)
	eventually(t, "TenantConfigured (bootstrap tokens, cluster-info, CSR approval bindings)", func() error {
		if c := findCondition(e.tcp(t, caRotTenant).Status.Conditions, kamajiv1alpha1.ConditionTenantConfigured); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	endpoint := e.tcp(t, caRotTenant).Status.ControlPlaneEndpoint
	phase(caRotTenant + " Ready at " + endpoint)

	// The old CA, kept by the test for what it issued before the rotation.
	caSecretName := tenantpki.SecretName(caRotTenant, tenantpki.CA)
	caSecret, err := e.cs.CoreV1().Secrets("default").Get(ctx(t), caSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldCA, err := tenantpki.LoadKeyPair(caSecret.Data, tenantpki.KeyCACert, tenantpki.KeyCAKey)
	if err != nil {
		t.Fatal(err)
	}
	oldUser, err := oldCA.Issue(pki.Request{
		CommonName: "e2e-old-ca", Organization: []string{"system:masters"},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	oldUserKey, err := oldUser.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	oldUserClient := kubernetes.NewForConfigOrDie(&rest.Config{
		Host: "https://" + endpoint, Timeout: 10 * time.Second,
		TLSClientConfig: rest.TLSClientConfig{CAData: oldCA.CertPEM(), CertData: oldUser.CertPEM(), KeyData: oldUserKey},
	})
	whoAmI := func() (string, error) {
		r, err := oldUserClient.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			return "", err
		}
		return r.Status.UserInfo.Username, nil
	}
	oldRoots := x509.NewCertPool()
	oldRoots.AddCert(oldCA.Cert)
	// verifiesWithOldCA: a client that only knows the old CA (as kubelet.conf) accepts the
	// apiserver's chain.
	verifiesWithOldCA := func() error {
		host, _, _ := net.SplitHostPort(endpoint)
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", endpoint, &tls.Config{RootCAs: oldRoots, ServerName: host})
		if err != nil {
			return err
		}
		return c.Close()
	}
	if u, err := whoAmI(); err != nil || u != "e2e-old-ca" {
		t.Fatalf("the old CA's user before the rotation: %q %v", u, err)
	}

	// The node joins with a bootstrap token, trusting the CA of that moment.
	adminConf := writeAdminConf(t, e, caRotTenant)
	kubeadm := filepath.Join(filepath.Dir(e.kubectl), "kubeadm")
	out, err := exec.Command(kubeadm, "token", "create", "--print-join-command", "--kubeconfig", adminConf).CombinedOutput()
	if err != nil {
		t.Fatalf("kubeadm token create: %v\n%s", err, out)
	}
	join := strings.TrimSpace(string(out))
	m := regexp.MustCompile(`--token ([a-z0-9]{6})\.`).FindStringSubmatch(join)
	if m == nil {
		t.Fatalf("kubeadm token create --print-join-command printed %q", join)
	}
	tenant := tenantAdminClient(t, adminConf)
	eventually(t, "cluster-info signed for the token", func() error {
		cm, err := tenant.CoreV1().ConfigMaps("kube-public").Get(ctx(t), "cluster-info", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data["jws-kubeconfig-"+m[1]] == "" {
			return fmt.Errorf("no signature for token %s yet", m[1])
		}
		return nil
	})
	setupNodeNetNS(t)
	certDir := t.TempDir()
	agentLog := filepath.Join(t.TempDir(), "node-agent.log")
	startInNetNS(t, agentLog, e.kamaji, "local", "node-agent", "--join-command", join,
		"--node-name", caRotNode, "--node-ip", joinNodeIP, "--cert-dir", certDir)
	eventually(t, "the node agent to serve", func() error { return logHas(agentLog, "serving kubelet API on") })
	eventually(t, "node "+caRotNode+" Ready", func() error {
		n, err := tenant.CoreV1().Nodes().Get(ctx(t), caRotNode, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c := nodeReady(n); c == nil || c.Status != corev1.ConditionTrue {
			return fmt.Errorf("Ready %+v", c)
		}
		return nil
	})
	if c, err := nodeClientCert(certDir); err != nil || c.CheckSignatureFrom(oldCA.Cert) != nil {
		t.Fatalf("the node's certificate is not the old CA's: %v", err)
	}
	phase("node " + caRotNode + " joined and Ready")

	w := watchNode(e, caRotTenant, caRotNode)
	defer w.halt()
	// waitFor polls like eventually, for longer (pods roll, the node renews on its own
	// schedule), and fails at once when the node was seen anything but Ready.
	waitFor := func(t *testing.T, what string, timeout time.Duration, fn func() error) {
		t.Helper()
		var err error
		if wait.PollUntilContextTimeout(context.Background(), time.Second, timeout, true, func(context.Context) (bool, error) {
			if bad := w.notReady(); bad != "" {
				t.Fatalf("node %s not Ready while waiting for %s: %s", caRotNode, what, bad)
			}
			err = fn()
			return err == nil, nil
		}) != nil {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		phase(what)
	}
	eventually(t, "the node watch's first sample", func() error { return w.sampled() })

	// 1. The rotation starts.
	kubectlAdmin(t, e, "annotate", "secret", "-n", "default", caSecretName, kamajiv1alpha1.RotateCertificatesAnnotation+"=e2e")
	phase("rotation requested")
	var newCA *x509.Certificate
	var window string
	sawRotating := false
	waitFor(t, "the TCP Ready in the overlap: a new ca.crt, ca-previous.crt the old CA, the apiserver serving the new chain", 5*time.Minute, func() error {
		tcp := e.tcp(t, caRotTenant)
		status := tcp.Status.Kubernetes.Version.Status
		if status != nil && *status == kamajiv1alpha1.VersionCertificateAuthorityRotating {
			sawRotating = true
		}
		s, err := e.cs.CoreV1().Secrets("default").Get(ctx(t), caSecretName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur, err := pki.ParseCert(s.Data[tenantpki.KeyCACert])
		if err != nil {
			return err
		}
		if cur.Equal(oldCA.Cert) {
			return fmt.Errorf("ca.crt is still the old CA")
		}
		if prev, err := pki.ParseCert(s.Data[tenantpki.KeyCAPreviousCert]); err != nil || !prev.Equal(oldCA.Cert) {
			return fmt.Errorf("%s: %v, not the old CA", tenantpki.KeyCAPreviousCert, err)
		}
		if len(s.Data[tenantpki.KeyCACrossCert]) == 0 || s.Annotations[tenantpki.CAPreviousUntilAnnotation] == "" {
			return fmt.Errorf("no %s or no %s annotation", tenantpki.KeyCACrossCert, tenantpki.CAPreviousUntilAnnotation)
		}
		if status == nil || *status != kamajiv1alpha1.VersionReady {
			return fmt.Errorf("status %v", status)
		}
		newCA, window = cur, s.Annotations[tenantpki.CAPreviousUntilAnnotation]
		return servesChainOf(endpoint, cur)
	})
	phase(fmt.Sprintf("(status CertificateAuthorityRotating seen: %v; the overlap would end at %s)", sawRotating, window))
	t.Run("in the overlap, the old CA's clients and the old-CA-only trust keep working", func(t *testing.T) {
		if u, err := whoAmI(); err != nil || u != "e2e-old-ca" {
			t.Errorf("a client certificate of the old CA: %q %v, want accepted as e2e-old-ca", u, err)
		}
		if err := verifiesWithOldCA(); err != nil {
			t.Errorf("a client trusting only the old CA: %v", err)
		}
	})

	// 2. The node renews its client certificate, now from the new CA.
	waitFor(t, "the node's client certificate to be renewed by the new CA", 5*time.Minute, func() error {
		c, err := nodeClientCert(certDir)
		if err != nil {
			return err
		}
		if c.CheckSignatureFrom(newCA) != nil {
			return fmt.Errorf("kubelet-client-current.pem still issued by the old CA (serial %s, until %s)", c.SerialNumber.Text(16), c.NotAfter.UTC().Format(time.RFC3339))
		}
		return nil
	})

	// 3. The overlap is ended early, as a user may.
	until := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	kubectlAdmin(t, e, "annotate", "--overwrite", "secret", "-n", "default", caSecretName, tenantpki.CAPreviousUntilAnnotation+"="+until)
	phase("overlap ended by the annotation (" + until + ")")
	waitFor(t, "the TCP Ready with the old CA dropped (no ca-previous.crt, ca-bundle.crt or annotation; ca-cross.crt kept)", 5*time.Minute, func() error {
		s, err := e.cs.CoreV1().Secrets("default").Get(ctx(t), caSecretName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, k := range []string{tenantpki.KeyCAPreviousCert, tenantpki.KeyCABundle} {
			if _, ok := s.Data[k]; ok {
				return fmt.Errorf("%s still there", k)
			}
		}
		if v, ok := s.Annotations[tenantpki.CAPreviousUntilAnnotation]; ok {
			return fmt.Errorf("annotation %s still there (%s)", tenantpki.CAPreviousUntilAnnotation, v)
		}
		if len(s.Data[tenantpki.KeyCACrossCert]) == 0 {
			return fmt.Errorf("%s gone", tenantpki.KeyCACrossCert)
		}
		if cur, err := pki.ParseCert(s.Data[tenantpki.KeyCACert]); err != nil || !cur.Equal(newCA) {
			return fmt.Errorf("ca.crt changed again: %v", err)
		}
		if status := e.tcp(t, caRotTenant).Status.Kubernetes.Version.Status; status == nil || *status != kamajiv1alpha1.VersionReady {
			return fmt.Errorf("status %v", status)
		}
		return nil
	})
	waitFor(t, "the old CA's client certificate refused (401)", 3*time.Minute, func() error {
		u, err := whoAmI()
		if apierrors.IsUnauthorized(err) {
			return nil
		}
		return fmt.Errorf("answered %q, %v", u, err)
	})
	overlapEnded := time.Now()

	t.Run("after the overlap, the node is Ready and renews its Lease, the old-CA-only trust still verifies, kubectl works", func(t *testing.T) {
		waitFor(t, "a Lease renewal after the overlap ended", 2*time.Minute, func() error {
			if rt := w.leaseRenewed(); !rt.After(overlapEnded) {
				return fmt.Errorf("last renewal %s", rt.UTC().Format(time.RFC3339Nano))
			}
			return nil
		})
		n, err := e.tenantAdminFromSecret(caRotTenant).CoreV1().Nodes().Get(ctx(t), caRotNode, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c := nodeReady(n); c == nil || c.Status != corev1.ConditionTrue {
			t.Errorf("node Ready %+v", c)
		}
		if err := verifiesWithOldCA(); err != nil {
			t.Errorf("a client trusting only the old CA: %v", err)
		}
		conf := writeAdminConf(t, e, caRotTenant)
		if out, err := exec.Command(e.kubectl, "--kubeconfig", conf, "get", "ns", "-o", "name", "--request-timeout=10s").CombinedOutput(); err != nil || !strings.Contains(string(out), "namespace/kube-system") {
			t.Errorf("kubectl get ns with the admin kubeconfig: %v: %s", err, out)
		}
	})
	if bad := w.notReady(); bad != "" {
		t.Errorf("node %s not Ready at some point: %s", caRotNode, bad)
	}
	w.halt()
	samples, readErrs, lastErr := w.summary()
	t.Logf("node watch: %d samples, all Ready; %d failed reads (last: %v)", samples, readErrs, lastErr)
	// The node's requests may fail while the apiserver restarts, but never because of the CAs:
	// its certificate refused (Unauthorized) or the apiserver's chain not verified (x509).
	data, _ := os.ReadFile(agentLog)
	var certLines, failed []string
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(l, "client certificate"):
			certLines = append(certLines, l)
		case strings.HasPrefix(l, "lease: "), strings.HasPrefix(l, "node status: "):
			failed = append(failed, l)
		}
		// Any line: the certificate manager's CSR requests log to stderr (klog).
		if strings.Contains(l, "Unauthorized") || strings.Contains(l, "x509:") {
			t.Errorf("node agent: %s", l)
		}
	}
	t.Logf("node agent's certificates:\n%s", strings.Join(certLines, "\n"))
	t.Logf("node agent's failed heartbeats: %d %v", len(failed), failed)
}

// servesChainOf checks that the apiserver at endpoint serves a certificate issued by ca, the
// sign that its pods run with the rotated certificates.
func servesChainOf(endpoint string, ca *x509.Certificate) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", endpoint, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the chain is checked below
	if err != nil {
		return err
	}
	defer c.Close()
	peers := c.ConnectionState().PeerCertificates
	if len(peers) == 0 || peers[0].CheckSignatureFrom(ca) != nil {
		return fmt.Errorf("the apiserver serves a certificate of another CA")
	}
	return nil
}

// nodeClientCert is the certificate the node agent currently uses (the kubelet's layout).
func nodeClientCert(certDir string) (*x509.Certificate, error) {
	data, err := os.ReadFile(filepath.Join(certDir, "kubelet-client-current.pem"))
	if err != nil {
		return nil, err // also for a moment while the store swaps the link
	}
	return pki.ParseCert(data)
}

func nodeReady(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// writeAdminConf writes the tenant's admin.conf as its Secret holds it now.
func writeAdminConf(t *testing.T, e *e2e, name string) string {
	t.Helper()
	s, err := e.cs.CoreV1().Secrets("default").Get(ctx(t), kubeconfig.AdminSecretName(name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "admin.conf")
	if err := os.WriteFile(path, s.Data["admin.conf"], 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func tenantAdminClient(t *testing.T, path string) kubernetes.Interface {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(rc)
}

// tenantAdminFromSecret is a client with the tenant's admin.conf as its Secret holds it now;
// nil when it cannot be read.
func (e *e2e) tenantAdminFromSecret(name string) kubernetes.Interface {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.cs.CoreV1().Secrets("default").Get(c, kubeconfig.AdminSecretName(name), metav1.GetOptions{})
	if err != nil {
		return nil
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig(s.Data["admin.conf"])
	if err != nil {
		return nil
	}
	rc.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil
	}
	return cs
}

func kubectlAdmin(t *testing.T, e *e2e, args ...string) {
	t.Helper()
	args = append([]string{"--kubeconfig", filepath.Join(e.state, "admin.kubeconfig")}, args...)
	if out, err := exec.Command(e.kubectl, args...).CombinedOutput(); err != nil {
		t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// nodeWatch samples the Node's Ready condition and its Lease every second in the background,
// with the tenant's admin credentials of the moment: the rotation replaces them, so a failed
// read takes them again from their Secret.
type nodeWatch struct {
	mu        sync.Mutex
	samples   int
	bad       []string // samples where the node was not Ready
	readErrs  int
	lastErr   error
	renewTime time.Time
	stop      chan struct{}
	done      chan struct{}
	once      sync.Once
}

func watchNode(e *e2e, tenant, node string) *nodeWatch {
	w := &nodeWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var cs kubernetes.Interface
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if cs == nil {
				cs = e.tenantAdminFromSecret(tenant)
			}
			if cs != nil {
				if err := w.sample(cs, node); err != nil {
					cs = nil
				}
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *nodeWatch) sample(cs kubernetes.Interface, node string) error {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := cs.CoreV1().Nodes().Get(c, node, metav1.GetOptions{})
	var renewed *metav1.MicroTime
	if err == nil {
		var l *coordinationv1.Lease
		if l, err = cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(c, node, metav1.GetOptions{}); err == nil {
			renewed = l.Spec.RenewTime
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.readErrs++
		w.lastErr = err
		return err
	}
	w.samples++
	if c := nodeReady(n); c == nil || c.Status != corev1.ConditionTrue {
		w.bad = append(w.bad, fmt.Sprintf("%s Ready=%+v", time.Now().UTC().Format(time.RFC3339), c))
	}
	if renewed != nil {
		w.renewTime = renewed.Time
	}
	return nil
}

func (w *nodeWatch) sampled() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.samples == 0 {
		return fmt.Errorf("no sample yet (%d failed reads, last: %v)", w.readErrs, w.lastErr)
	}
	return nil
}

// notReady describes the samples where the node was not Ready ("" when none).
func (w *nodeWatch) notReady() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.bad, "; ")
}

func (w *nodeWatch) leaseRenewed() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.renewTime
}

func (w *nodeWatch) summary() (samples, readErrs int, lastErr error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.samples, w.readErrs, w.lastErr
}

func (w *nodeWatch) halt() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}
