package nodeagent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// servingCert makes the kubelet port's self-signed certificate, as a kubelet without
// --tls-cert-file does. The apiserver does not verify kubelet serving certificates unless it is
// given --kubelet-certificate-authority, so no CSR round is needed for it.
func servingCert(nodeName, nodeIP string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s@%d", nodeName, now.Unix())},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{nodeName},
	}
	if ip := net.ParseIP(nodeIP); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// kubeletTLSConfig serves cert and admits only clients with a certificate of the tenant CA: the
// apiserver's kubelet-client certificate is one. Anything else fails in the handshake.
func kubeletTLSConfig(cert tls.Certificate, clientCAPEM []byte) (*tls.Config, error) {
	pool, err := certPool(clientCAPEM)
	if err != nil {
		return nil, fmt.Errorf("client CA: %v", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// kubeletHandler answers the few kubelet paths the apiserver and tests use, logging each request
// with the client certificate's CN so a test can see who called.
func kubeletHandler(logf func(string, ...any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := "-"
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			user = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		logf("request %s %s from %s user %s", r.Method, r.URL.Path, r.RemoteAddr, user)
		switch r.URL.Path {
		case "/healthz":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok"))
		case "/pods":
			// The agent runs no pods; an empty list is the truthful answer.
			list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: []corev1.Pod{}}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(&list)
		default:
			http.NotFound(w, r)
		}
	})
}

// serveKubelet serves the kubelet API on ln until ctx ends, then shuts down gracefully.
func serveKubelet(ctx context.Context, ln net.Listener, cfg *tls.Config, logf func(string, ...any)) error {
	srv := &http.Server{
		Handler:           kubeletHandler(logf),
		TLSConfig:         cfg,
		ReadHeaderTimeout: 10 * time.Second,
		// Refused handshakes are worth a line too: they show a caller with the wrong credentials.
		ErrorLog: log.New(logWriter(logf), "", 0),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(ln, cfg)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("kubelet API on %s: %v", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	return nil
}

// logWriter adapts logf to the io.Writer http.Server's ErrorLog wants.
type logWriter func(string, ...any)

func (f logWriter) Write(p []byte) (int, error) {
	s := string(p)
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	f("serve: %s", s)
	return len(p), nil
}
