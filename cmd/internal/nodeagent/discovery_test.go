package nodeagent

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/cluster-bootstrap/token/jws"
)

const (
	tokenID     = "abcdef"
	tokenSecret = "0123456789abcdef"
	// The cluster-info endpoint differs from the one the agent is given, as in a tenant whose
	// public endpoint is not the address a test node dials.
	clusterInfoServer = "https://tenant.example:6443"
)

// pinTestCert's pin was computed with kubeadm's documented recipe:
// openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256sum
const pinTestCert = `-----BEGIN CERTIFICATE-----
MIIBgjCCASmgAwIBAgIUX5HwQ6aAMCXtWloGg21va6k7DpQwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLcGluLXRlc3QtY2EwIBcNMjYxMTIzMjMxMzI3WhgPMjEyNjEw
MzAyMzEzMjdaMBYxFDASBgNVBAMMC3Bpbi10ZXN0LWNhMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEofYFVAEmn8Cwt1R6cooEZOw7/Fp3V6SxOtw1v4785wlOyoFr
wWX64eJzZbtbDTmol8+7R9n7CTTEv4kVAyhTMqNTMFEwHQYDVR0OBBYEFJXjwqZl
P6yRJalyNF3a1xjiSnJQMB8GA1UdIwQYMBaAFJXjwqZlP6yRJalyNF3a1xjiSnJQ
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgf3UxW9fIAu40Mvjk
HlV4Iv3rE0rgh8osLnelTyUEdjACICiIsEVRo4IAQI0udWh6ITFNQbMTV8SIyo5q
X4YkD2ga
-----END CERTIFICATE-----
`

func TestPublicKeyPin(t *testing.T) {
	certs, err := certutil.ParseCertsPEM([]byte(pinTestCert))
	if err != nil {
		t.Fatal(err)
	}
	if got := PublicKeyPin(certs[0]); got != testHash {
		t.Errorf("pin %s, want %s", got, testHash)
	}
	// A bundle passes when any certificate matches any pin.
	other := newTestCA(t, "other")
	bundle := append(append([]byte{}, other.pem...), pinTestCert...)
	if err := checkPins(bundle, []string{"sha256:" + strings.Repeat("0", 64), testHash}); err != nil {
		t.Error(err)
	}
	wantErr(t, checkPins(other.pem, []string{testHash}), "CA public key pin mismatch: got "+PublicKeyPin(other.cert)+", want "+testHash)
}

// fakeAPIServer serves kube-public/cluster-info like a tenant apiserver: data(n, ...) is the
// ConfigMap's data on the n-th request (from 1).
type fakeAPIServer struct {
	*httptest.Server
	requests atomic.Int32
	kc, sig  atomic.Value // strings: the kubeconfig and its signature, set after the start
}

func newFakeAPIServer(t *testing.T, data func(n int32, kc, sig string) map[string]string) *fakeAPIServer {
	t.Helper()
	s := &fakeAPIServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/namespaces/kube-public/configmaps/cluster-info" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "" {
			t.Errorf("discovery sent credentials: %q", r.Header.Get("Authorization"))
		}
		cm := corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: "kube-public"},
			Data:       data(s.requests.Add(1), s.kc.Load().(string), s.sig.Load().(string)),
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&cm)
	}))
	// Refused handshakes are expected in some tests; keep them out of the output.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// set stores the kubeconfig and its signature the handler serves.
func (s *fakeAPIServer) set(kc, sig string) { s.kc.Store(kc); s.sig.Store(sig) }

// caPEM is the test server's certificate, which stands in for the tenant CA.
func (s *fakeAPIServer) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// clusterInfoKubeconfig is cluster-info's kubeconfig as kubeadm writes it: one cluster named "".
func clusterInfoKubeconfig(t *testing.T, caPEM []byte) string {
	t.Helper()
	b, err := clientcmd.Write(clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{"": {Server: clusterInfoServer, CertificateAuthorityData: caPEM}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sign(t *testing.T, content, secret string) string {
	t.Helper()
	sig, err := jws.ComputeDetachedSignature(content, tokenID, secret)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func (s *fakeAPIServer) discovery(pin string) Discovery {
	return Discovery{
		Server: s.URL, TokenID: tokenID, TokenSecret: tokenSecret, Pins: []string{pin},
		Interval: 10 * time.Millisecond, Timeout: 10 * time.Second,
	}
}

// signedServer serves a cluster-info with the CA of its own certificate, signed with secret.
func signedServer(t *testing.T, secret string) *fakeAPIServer {
	s := newFakeAPIServer(t, func(_ int32, kc, sig string) map[string]string {
		return map[string]string{"kubeconfig": kc, "jws-kubeconfig-" + tokenID: sig}
	})
	s.setSigned(t, secret)
	return s
}

// setSigned serves a cluster-info with the server's own certificate as CA, signed with secret.
func (s *fakeAPIServer) setSigned(t *testing.T, secret string) {
	kc := clusterInfoKubeconfig(t, s.caPEM())
	s.set(kc, sign(t, kc, secret))
}

func TestDiscovery(t *testing.T) {
	s := signedServer(t, tokenSecret)
	info, err := s.discovery(PublicKeyPin(s.Certificate())).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if string(info.CAPEM) != string(s.caPEM()) || info.Server != clusterInfoServer {
		t.Errorf("info %+v", info)
	}
	// Once without verification, once verified by the discovered CA.
	if n := s.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestDiscoveryWrongSecret(t *testing.T) {
	s := signedServer(t, "ffffffffffffffff")
	_, err := s.discovery(PublicKeyPin(s.Certificate())).Run(context.Background())
	wantErr(t, err, "cluster-info signature for token abcdef is invalid")
}

func TestDiscoveryWrongPin(t *testing.T) {
	s := signedServer(t, tokenSecret)
	_, err := s.discovery(testHash).Run(context.Background())
	wantErr(t, err, "CA public key pin mismatch: got "+PublicKeyPin(s.Certificate())+", want "+testHash)
}

func TestDiscoveryWaitsForSignature(t *testing.T) {
	s := newFakeAPIServer(t, func(n int32, kc, sig string) map[string]string {
		if n == 1 {
			// The bootstrap signer has not got to the new token yet.
			return map[string]string{"kubeconfig": kc, "jws-kubeconfig-other1": "x"}
		}
		return map[string]string{"kubeconfig": kc, "jws-kubeconfig-" + tokenID: sig}
	})
	s.setSigned(t, tokenSecret)
	if _, err := s.discovery(PublicKeyPin(s.Certificate())).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3 (unsigned, signed, verified)", n)
	}
}

func TestDiscoverySignatureNeverAppears(t *testing.T) {
	s := newFakeAPIServer(t, func(_ int32, kc, _ string) map[string]string { return map[string]string{"kubeconfig": kc} })
	s.setSigned(t, tokenSecret)
	d := s.discovery(PublicKeyPin(s.Certificate()))
	d.Timeout = 200 * time.Millisecond
	_, err := d.Run(context.Background())
	wantErr(t, err, "cluster-info signature for token abcdef never appeared within 200ms")
	if n := s.requests.Load(); n < 2 {
		t.Errorf("%d requests, want it polled", n)
	}

	// The same when the caller's deadline (the agent's --timeout) ends the wait first.
	ctx, cancel := context.WithTimeout(context.Background(), d.Timeout)
	defer cancel()
	_, err = d.Run(ctx)
	wantErr(t, err, "cluster-info signature for token abcdef never appeared within 200ms")

	// An interrupt is not reported as a timeout.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err = d.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}

	// A server that cannot be reached says why.
	d.Server = "https://127.0.0.1:1"
	_, err = d.Run(context.Background())
	wantErr(t, err, "never appeared within 200ms (last error: ")
}

// A server that answers with a correctly signed cluster-info but does not hold a certificate of
// the CA in it (it learned the token, not the CA's key) is caught by the verified re-read.
func TestDiscoveryServerNotOfTheCA(t *testing.T) {
	ca := newTestCA(t, "tenant-ca")
	kc := clusterInfoKubeconfig(t, ca.pem)
	sig := sign(t, kc, tokenSecret)
	s := newFakeAPIServer(t, func(_ int32, kc, sig string) map[string]string {
		return map[string]string{"kubeconfig": kc, "jws-kubeconfig-" + tokenID: sig}
	})
	s.set(kc, sig)
	_, err := s.discovery(PublicKeyPin(ca.cert)).Run(context.Background())
	wantErr(t, err, "cluster-info over TLS verified by the discovered CA: ")
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error %q does not name the certificate problem", err)
	}
}

func TestDiscoveryContentChanged(t *testing.T) {
	s := newFakeAPIServer(t, func(n int32, kc, sig string) map[string]string {
		if n > 1 {
			return map[string]string{"kubeconfig": kc + "# changed\n", "jws-kubeconfig-" + tokenID: sig}
		}
		return map[string]string{"kubeconfig": kc, "jws-kubeconfig-" + tokenID: sig}
	})
	s.setSigned(t, tokenSecret)
	_, err := s.discovery(PublicKeyPin(s.Certificate())).Run(context.Background())
	wantErr(t, err, "cluster-info read over verified TLS differs from the signed one")
}

func TestParseClusterInfoKubeconfig(t *testing.T) {
	ca := newTestCA(t, "kubernetes")
	info, err := parseClusterInfoKubeconfig([]byte(clusterInfoKubeconfig(t, ca.pem)))
	if err != nil || string(info.CAPEM) != string(ca.pem) || info.Server != clusterInfoServer {
		t.Fatalf("%+v, %v", info, err)
	}
	two, err := clientcmd.Write(clientcmdapi.Config{Clusters: map[string]*clientcmdapi.Cluster{
		"a": {Server: "https://a:1", CertificateAuthorityData: ca.pem}, "b": {Server: "https://b:1", CertificateAuthorityData: ca.pem},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = parseClusterInfoKubeconfig(two)
	wantErr(t, err, "cluster-info kubeconfig has 2 clusters, want 1")
	_, err = parseClusterInfoKubeconfig([]byte(clusterInfoKubeconfig(t, nil)))
	wantErr(t, err, "no certificate-authority-data")
}
