package nodeagent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/connrotation"
)

// ClientCertPairPrefix names the client certificate files in --cert-dir, as the kubelet's:
// kubelet-client-<time>.pem (certificate then key) per certificate, and the symlink
// kubelet-client-current.pem to the one in use.
const ClientCertPairPrefix = "kubelet-client"

// clientCertRotation renews the node's client certificate as a kubelet with rotateCertificates
// does: client-go's certificate manager sends a CSR for the kubelet signer at 70–90 % of the
// certificate's lifetime (auto-approved by kubeadm's node-autoapprove-certificate-rotation
// binding), and every new connection of the node's client presents the current certificate.
// A renewal also closes the open connections: a kept-alive connection would go on
// authenticating with the old certificate, which the apiserver refuses once it expires or its
// CA stops being trusted (the end of a CA rotation's overlap).
type clientCertRotation struct {
	current atomic.Pointer[tls.Certificate]
	dialer  *connrotation.Dialer
	store   certificate.Store // notifies renewed of each new certificate
	logf    func(string, ...any)
	// client is the node's: heartbeats and registration. It never watches, so a request
	// timeout keeps a hung apiserver from stalling the heartbeats. csrClient, on the same
	// connections, waits for its certificates with a watch, bounded by the manager instead.
	client, csrClient kubernetes.Interface
}

// startClientCertRotation starts renewing the pair stored in certDir (WriteCredentials put it
// there) until ctx ends, and returns the node's client.
func startClientCertRotation(ctx context.Context, server, certDir, nodeName string, caPEM []byte, logf func(string, ...any)) (kubernetes.Interface, error) {
	r, err := newClientCertRotation(server, certDir, caPEM, logf)
	if err != nil {
		return nil, err
	}
	if err := r.start(ctx, nodeName); err != nil {
		return nil, err
	}
	return r.client, nil
}

// newClientCertRotation makes the node's clients from the pair stored in certDir. They trust
// caPEM and nothing else, as kubelet.conf does: the CA the node got at discovery is the only
// one it will ever know, so after a CA rotation the apiserver must present a chain to it.
func newClientCertRotation(server, certDir string, caPEM []byte, logf func(string, ...any)) (*clientCertRotation, error) {
	store, err := certificate.NewFileStore(ClientCertPairPrefix, certDir, certDir, "", "")
	if err != nil {
		return nil, fmt.Errorf("--cert-dir: %v", err)
	}
	first, err := store.Current()
	if err != nil {
		return nil, fmt.Errorf("--cert-dir: %v", err)
	}
	roots, err := certPool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("tenant CA: %v", err)
	}
	r := &clientCertRotation{
		dialer: connrotation.NewDialer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext),
		logf:   logf,
	}
	r.store = notifyingStore{Store: store, updated: r.renewed}
	r.current.Store(first)
	logf("client certificate: %s", describeCert(first.Leaf))

	// The transport the kubelet builds for the same purpose (its certificate transport): the
	// client certificate is chosen at each handshake, and the dialer tracks connections so
	// that a renewal can close them.
	transport := utilnet.SetTransportDefaults(&http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 25,
		DialContext:         r.dialer.DialContext,
		TLSClientConfig: &tls.Config{
			RootCAs:    roots,
			MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return r.current.Load(), nil
			},
		},
	})
	if r.client, err = kubernetes.NewForConfig(&rest.Config{Host: server, Transport: transport, Timeout: 30 * time.Second, UserAgent: userAgent}); err != nil {
		return nil, err
	}
	if r.csrClient, err = kubernetes.NewForConfig(&rest.Config{Host: server, Transport: transport, UserAgent: userAgent}); err != nil {
		return nil, err
	}
	return r, nil
}

// start runs client-go's certificate manager until ctx ends.
func (r *clientCertRotation) start(ctx context.Context, nodeName string) error {
	m, err := certificate.NewManager(&certificate.Config{
		ClientsetFn: func(*tls.Certificate) (kubernetes.Interface, error) { return r.csrClient, nil },
		// What nodeClientCSR asks for at bootstrap: the approver's kubelet-client recognizer
		// and the node authorizer expect exactly this subject.
		Template: &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: "system:node:" + nodeName, Organization: []string{"system:nodes"}},
		},
		SignerName:       certificatesv1.KubeAPIServerClientKubeletSignerName,
		GetUsages:        certificate.DefaultKubeletClientGetUsages,
		CertificateStore: r.store,
		Name:             "kubelet-client",
		Ctx:              &ctx,
	})
	if err != nil {
		return fmt.Errorf("certificate manager: %v", err)
	}
	m.Start()
	return nil
}

// renewed switches to the new certificate before the old connections are closed, so that the
// connections opened next present it.
func (r *clientCertRotation) renewed(c *tls.Certificate) {
	r.current.Store(c)
	r.dialer.CloseAll()
	r.logf("client certificate renewed: %s", describeCert(c.Leaf))
}

// notifyingStore tells the rotation about a new certificate as soon as it is stored: the
// manager offers no callback, and polling it would leave a moment where new connections still
// use the old certificate.
type notifyingStore struct {
	certificate.Store
	updated func(*tls.Certificate)
}

func (s notifyingStore) Update(cert, key []byte) (*tls.Certificate, error) {
	c, err := s.Store.Update(cert, key)
	if err == nil {
		s.updated(c)
	}
	return c, err
}

// describeCert names what a reader of the log needs to tell certificates and their CAs apart:
// tenant CAs share their common name, so the issuer's key id is printed too.
func describeCert(c *x509.Certificate) string {
	if c == nil {
		return "unreadable"
	}
	return fmt.Sprintf("serial %s issued by %q (key id %s), valid until %s",
		c.SerialNumber.Text(16), c.Issuer.CommonName, hex.EncodeToString(c.AuthorityKeyId), c.NotAfter.UTC().Format(time.RFC3339))
}

func certPool(caPEM []byte) (*x509.CertPool, error) {
	cas, err := certutil.ParseCertsPEM(caPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	return pool, nil
}
