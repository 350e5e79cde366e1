package nodeagent

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	stdlog "log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/sdk/testkit/child"
)

// A real kube-apiserver and kube-controller-manager (CSR approving and signing): the agent
// starts with a client certificate of 45 s, as if its bootstrap had been that long ago; the
// certificate manager renews it through a CSR before it expires, and the Lease goes on being
// renewed after the first certificate has expired, which only works if the node's new
// connections present the new certificate and the old ones were closed.
func TestClientCertRenewal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	plane, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plane.Stop)
	admin := kubernetes.NewForConfigOrDie(plane.Config)
	// RBAC as in a kubeadm cluster: what the Node authorizer lets a node do (the system:node
	// role's rules), and kubeadm's auto-approval of the nodes' renewal CSRs.
	for name, role := range map[string]string{
		"e2e-nodes": "system:node",
		"kubeadm:node-autoapprove-certificate-rotation": "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
	} {
		_, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "system:nodes"}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	startControllerManager(t, plane, "--cluster-signing-duration=1h")

	first, err := plane.CA.Issue(pki.Request{
		CommonName: "system:node:node-1", Organization: []string{"system:nodes"},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: 45 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := first.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pki")
	if err := WriteCredentials(dir, &Credentials{CertPEM: first.CertPEM(), KeyPEM: keyPEM, CAPEM: plane.CA.CertPEM()}); err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	log := &lines{}
	nc, err := startClientCertRotation(runCtx, plane.Config.Host, dir, "node-1", plane.CA.CertPEM(), log.logf)
	if err != nil {
		t.Fatal(err)
	}
	var node *corev1.Node
	poll(t, "the node to register (RBAC just created)", time.Minute, func() (err error) {
		node, err = RegisterNode(ctx, nc, NodeParams{Name: "node-1", IP: "127.0.0.1", Port: 10250, KubeletVersion: "v1.37.2"})
		return err
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		keepAlive(runCtx, nc, node, log.logf)
	}()
	t.Cleanup(func() {
		stop()
		<-done
		t.Logf("agent log:\n%s", log.all())
	})

	poll(t, "the client certificate to be renewed", 2*time.Minute, func() error {
		if !strings.Contains(log.all(), "client certificate renewed: ") {
			return fmt.Errorf("no renewal logged")
		}
		return nil
	})
	current, err := tls.LoadX509KeyPair(filepath.Join(dir, "kubelet-client-current.pem"), filepath.Join(dir, "kubelet-client-current.pem"))
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := x509.ParseCertificate(current.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if renewed.SerialNumber.Cmp(first.Cert.SerialNumber) == 0 || renewed.CheckSignatureFrom(plane.CA.Cert) != nil ||
		renewed.Subject.CommonName != "system:node:node-1" || !renewed.NotAfter.After(first.Cert.NotAfter) {
		t.Fatalf("kubelet-client-current.pem: serial %s, subject %s, until %s", renewed.SerialNumber, renewed.Subject, renewed.NotAfter)
	}
	if want := "client certificate renewed: " + describeCert(renewed); !strings.Contains(log.all(), want) {
		t.Errorf("log has no %q", want)
	}
	// The renewal was asked for by the node itself, with the certificate it had, and approved by
	// the controller manager.
	csrs, err := admin.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var renewal *certificatesv1.CertificateSigningRequest
	for i := range csrs.Items {
		if csrs.Items[i].Spec.Username == "system:node:node-1" {
			renewal = &csrs.Items[i]
		}
	}
	if renewal == nil || renewal.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName || len(renewal.Status.Certificate) == 0 {
		t.Fatalf("no signed kubelet-client CSR by system:node:node-1 among %d: %+v", len(csrs.Items), renewal)
	}

	// Heartbeats after the first certificate has expired.
	poll(t, "a Lease renewal after the first certificate expired", 2*time.Minute, func() error {
		l, err := admin.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "node-1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if rt := l.Spec.RenewTime; rt == nil || !rt.After(first.Cert.NotAfter.Add(time.Second)) {
			return fmt.Errorf("renewed at %v, the first certificate expired at %s", rt, first.Cert.NotAfter)
		}
		return nil
	})
	// A connection kept from before the renewal would have been refused once the first
	// certificate expired (the apiserver checks the certificate at each request).
	if strings.Contains(log.all(), "Unauthorized") {
		t.Errorf("a heartbeat was refused:\n%s", log.all())
	}
	t.Logf("first certificate until %s; renewed one %s", first.Cert.NotAfter.UTC().Format(time.RFC3339), describeCert(renewed))
}

// The node's client presents the current certificate at each handshake, and a renewal closes
// the connections made with the previous one; it refuses a server its discovery CA did not sign.
func TestClientCertRotationTransport(t *testing.T) {
	ca := newTestCA(t, "kubernetes")
	servingPair := apiserverPair(t, ca)
	var mu sync.Mutex
	var seen []string // client certificate serial per request
	var conns int
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if len(r.TLS.PeerCertificates) > 0 {
			seen = append(seen, r.TLS.PeerCertificates[0].SerialNumber.String())
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"major":"1","minor":"37","gitVersion":"v1.37.2"}`))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{servingPair}, ClientAuth: tls.RequireAnyClientCert}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.EnableHTTP2 = true
	// The refused handshake at the end is expected.
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	first := nodePair(t, ca, "node-1")
	if err := WriteCredentials(dir, &Credentials{CertPEM: first.cert, KeyPEM: first.key, CAPEM: ca.pem}); err != nil {
		t.Fatal(err)
	}
	log := &lines{}
	r, err := newClientCertRotation(srv.URL, dir, ca.pem, log.logf)
	if err != nil {
		t.Fatal(err)
	}
	state := func() ([]string, int) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen), conns
	}
	for range 2 {
		if _, err := r.client.Discovery().ServerVersion(); err != nil {
			t.Fatal(err)
		}
	}
	if s, c := state(); len(s) != 2 || s[0] != first.serial.String() || s[1] != first.serial.String() || c != 1 {
		t.Fatalf("before the renewal: serials %v over %d connections, want %s twice over 1", s, c, first.serial)
	}

	// What the certificate manager does with a signed CSR.
	second := nodePair(t, ca, "node-1")
	if _, err := r.store.Update(second.cert, second.key); err != nil {
		t.Fatal(err)
	}
	if _, err := r.client.Discovery().ServerVersion(); err != nil {
		t.Fatal(err)
	}
	if s, c := state(); len(s) != 3 || s[2] != second.serial.String() || c != 2 {
		t.Fatalf("after the renewal: serials %v over %d connections, want %s last, on a second connection", s, c, second.serial)
	}
	if !strings.Contains(log.all(), "client certificate renewed: serial "+second.serial.Text(16)+` issued by "kubernetes"`) {
		t.Errorf("log:\n%s", log.all())
	}
	if cur, err := nodeCurrentSerial(dir); err != nil || cur != second.serial.String() {
		t.Errorf("kubelet-client-current.pem holds serial %s (%v), want %s", cur, err, second.serial)
	}

	// The same server, but the client was told of another CA at discovery.
	other := newTestCA(t, "kubernetes")
	r2, err := newClientCertRotation(srv.URL, dir, other.pem, log.logf)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r2.client.Discovery().ServerVersion()
	wantErr(t, err, "certificate signed by unknown authority")
}

func TestWriteCredentials(t *testing.T) {
	ca := newTestCA(t, "kubernetes")
	key := newKey(t)
	certPEM := ca.issue(t, nodeSubject("node-1"), key.Public())
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pemBlock("EC PRIVATE KEY", keyDER)
	dir := filepath.Join(t.TempDir(), "pki")
	c := &Credentials{CertPEM: certPEM, KeyPEM: keyPEM, CAPEM: ca.pem}
	for range 2 { // a second run stores the pair again
		if err := WriteCredentials(dir, c); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("folder: %v %v", st.Mode().Perm(), err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil || string(b) != string(ca.pem) {
		t.Errorf("ca.crt: %q %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "ca.crt")); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("ca.crt mode %v %v", st.Mode().Perm(), err)
	}
	// The kubelet's layout: the current pair, certificate then key, behind a symlink.
	current := filepath.Join(dir, "kubelet-client-current.pem")
	if fi, err := os.Lstat(current); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("kubelet-client-current.pem is not a symlink: %v", err)
	}
	if st, err := os.Stat(current); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("kubelet-client-current.pem mode %v %v", st.Mode().Perm(), err)
	}
	pair, err := tls.LoadX509KeyPair(current, current)
	if err != nil {
		t.Fatal(err)
	}
	if string(pemBlock("CERTIFICATE", pair.Certificate[0])) != string(certPEM) {
		t.Error("kubelet-client-current.pem holds another certificate")
	}
}

// apiserverPair is a serving certificate of ca for 127.0.0.1, as the tenant apiserver's.
func apiserverPair(t *testing.T, ca *testCA) tls.Certificate {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

type pair struct {
	cert, key []byte
	serial    *big.Int
}

// nodePair is a node client certificate of ca, as the signer issues them.
func nodePair(t *testing.T, ca *testCA, node string) pair {
	t.Helper()
	key := newKey(t)
	certPEM := ca.issue(t, nodeSubject(node), key.Public())
	b, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pair{cert: certPEM, key: mustKeyPEM(t, key), serial: c.SerialNumber}
}

func mustKeyPEM(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("EC PRIVATE KEY", der)
}

func nodeCurrentSerial(dir string) (string, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "kubelet-client-current.pem"), filepath.Join(dir, "kubelet-client-current.pem"))
	if err != nil {
		return "", err
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return "", err
	}
	return c.SerialNumber.String(), nil
}

func nodeSubject(name string) pkix.Name {
	return pkix.Name{CommonName: "system:node:" + name, Organization: []string{"system:nodes"}}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// startControllerManager runs kube-controller-manager's CSR approving and signing controllers
// against the plane, signing with the plane's CA, until the test ends.
func startControllerManager(t *testing.T, plane *testenv.Plane, args ...string) {
	t.Helper()
	bin, err := testenv.Binary("kube-controller-manager")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyPEM, err := plane.CA.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["plane"] = &clientcmdapi.Cluster{Server: plane.Config.Host, CertificateAuthorityData: plane.Config.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: plane.Config.CertData, ClientKeyData: plane.Config.KeyData}
	kc.Contexts["plane"] = &clientcmdapi.Context{Cluster: "plane", AuthInfo: "admin"}
	kc.CurrentContext = "plane"
	files := map[string][]byte{"ca.crt": plane.CA.CertPEM(), "ca.key": keyPEM}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := clientcmd.WriteToFile(*kc, filepath.Join(dir, "kubeconfig")); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "kube-controller-manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{
		"--kubeconfig=" + filepath.Join(dir, "kubeconfig"),
		"--controllers=csrapproving,csrsigning",
		"--cluster-signing-cert-file=" + filepath.Join(dir, "ca.crt"),
		"--cluster-signing-key-file=" + filepath.Join(dir, "ca.key"),
		"--leader-elect=false",
		"--secure-port=0",
	}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	exited, err := child.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("kube-controller-manager log:\n%s", b)
		}
	})
}

// poll calls fn every 200 ms until it answers nil, failing the test after timeout.
func poll(t *testing.T, what string, timeout time.Duration, fn func() error) {
	t.Helper()
	var err error
	if wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		err = fn()
		return err == nil, nil
	}) != nil {
		t.Fatalf("timed out waiting for %s: %v", what, err)
	}
}
