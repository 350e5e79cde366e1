package nodeagent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// kubeletUnderTest serves the kubelet API on a loopback port and returns its address, the
// tenant CA its clients need, a pool trusting its serving certificate, and its log lines.
func kubeletUnderTest(t *testing.T) (addr string, tenantCA *testCA, roots *x509.CertPool, log *lines) {
	t.Helper()
	tenantCA = newTestCA(t, "kubernetes")
	serving, err := servingCert("node-1", "127.0.0.1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(serving.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(leaf)
	cfg, err := kubeletTLSConfig(serving, tenantCA.pem)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log = &lines{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveKubelet(ctx, ln, cfg, log.logf) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serveKubelet: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("serveKubelet did not return after cancel")
		}
	})
	return ln.Addr().String(), tenantCA, roots, log
}

func httpsClient(roots *x509.CertPool, serverName string, certs ...tls.Certificate) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, ServerName: serverName, Certificates: certs,
		}},
	}
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestKubeletServerAcceptsTenantClient(t *testing.T) {
	addr, ca, roots, log := kubeletUnderTest(t)
	// The serving certificate names the node both by IP and by name.
	for _, serverName := range []string{"127.0.0.1", "node-1"} {
		c := httpsClient(roots, serverName, ca.clientCert(t, "kube-apiserver-kubelet-client"))
		if code, body := get(t, c, "https://"+addr+"/healthz"); code != 200 || body != "ok" {
			t.Errorf("/healthz via %s: %d %q", serverName, code, body)
		}
	}
	c := httpsClient(roots, "node-1", ca.clientCert(t, "kube-apiserver-kubelet-client"))

	code, body := get(t, c, "https://"+addr+"/pods")
	var pods corev1.PodList
	if err := json.Unmarshal([]byte(body), &pods); err != nil || code != 200 {
		t.Fatalf("/pods: %d %q: %v", code, body, err)
	}
	if pods.Kind != "PodList" || pods.APIVersion != "v1" || len(pods.Items) != 0 || !strings.Contains(body, `"items":[]`) {
		t.Errorf("/pods: %s", body)
	}

	if code, _ := get(t, c, "https://"+addr+"/containerLogs/kube-system/x/y"); code != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", code)
	}

	// Each request is one line naming the path and the caller; the handler logs before it
	// answers, so the lines are there now.
	got := log.all()
	for _, want := range []string{
		"request GET /healthz from 127.0.0.1:",
		"request GET /pods from 127.0.0.1:",
		"request GET /containerLogs/kube-system/x/y from 127.0.0.1:",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if strings.HasPrefix(l, "request ") && !strings.HasSuffix(l, " user kube-apiserver-kubelet-client") {
			t.Errorf("request line %q does not end with the client's CN", l)
		}
	}
}

func TestKubeletServerRejectsOtherClients(t *testing.T) {
	addr, _, roots, log := kubeletUnderTest(t)
	otherCA := newTestCA(t, "not-the-tenant")
	for name, c := range map[string]*http.Client{
		"no client certificate":          httpsClient(roots, "node-1"),
		"a certificate of another CA":    httpsClient(roots, "node-1", otherCA.clientCert(t, "kube-apiserver-kubelet-client")),
		"a self-signed client like a CA": httpsClient(roots, "node-1", selfSignedClient(t, otherCA)),
	} {
		resp, err := c.Get("https://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: got %s, want the handshake refused", name, resp.Status)
			continue
		}
		if !strings.Contains(err.Error(), "tls: ") {
			t.Errorf("%s: error %v, want a TLS alert", name, err)
		}
	}
	if got := log.all(); strings.Contains(got, "request ") {
		t.Errorf("a refused client reached a handler:\n%s", got)
	}

	// Checked directly on the handshake too: the server's verdict reaches the client by the
	// first read (with TLS 1.3 the client's own handshake may finish before it).
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "node-1",
		Certificates: []tls.Certificate{otherCA.clientCert(t, "x")}})
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "tls: ") {
		t.Errorf("handshake with another CA's certificate: %v, want a TLS alert", err)
	}
}

// selfSignedClient is the other CA's own certificate and key used as a client certificate.
func selfSignedClient(t *testing.T, ca *testCA) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{ca.cert.Raw}, PrivateKey: ca.key}
}

func TestServingCert(t *testing.T) {
	c, err := servingCert("node-1", "fd00::5", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("fd00::5")) ||
		len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "node-1" ||
		len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("SANs %v %v, usages %v", leaf.IPAddresses, leaf.DNSNames, leaf.ExtKeyUsage)
	}
}
