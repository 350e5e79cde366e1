package nodeagent

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/cluster-bootstrap/token/jws"
)

// ClusterInfo is what token discovery learns about the tenant cluster.
type ClusterInfo struct {
	CAPEM []byte // the tenant CA bundle, as in cluster-info, now trusted
	// Server is the endpoint cluster-info names. The agent keeps talking to --server instead:
	// cluster-info carries the public endpoint the tenant was configured with, which need not
	// be the address this agent reaches the apiserver at.
	Server string
}

// Discovery performs kubeadm's token discovery against one apiserver.
type Discovery struct {
	Server      string   // https://HOST:PORT
	TokenID     string   // public half of the bootstrap token
	TokenSecret string   // secret half: the HMAC key of the JWS signature
	Pins        []string // sha256:HEX public key pins; one CA certificate must match one
	Interval    time.Duration
	Timeout     time.Duration
}

// Run fetches cluster-info without trusting the server, waits for the JWS signature of the token
// to appear, checks it (proving the server knows the token secret), checks the CA against the
// pin (proving it is the CA the operator meant), then fetches cluster-info again over TLS
// verified by that CA and requires the same content, as kubeadm does.
func (d Discovery) Run(ctx context.Context) (*ClusterInfo, error) {
	insecure, err := clusterInfoClient(d.Server, nil)
	if err != nil {
		return nil, err
	}
	var kubeconfig, sig string
	var lastErr error
	poll := func(ctx context.Context) (bool, error) {
		cm, err := insecure.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
		if err != nil {
			// The apiserver may still be starting, or RBAC for anonymous reads not yet there.
			lastErr = err
			return false, nil
		}
		kc, hasKC := cm.Data[bootstrapapi.KubeConfigKey]
		s, hasSig := cm.Data[jwsKey(d.TokenID)]
		if !hasKC || !hasSig {
			// The bootstrap signer adds the signature some time after the token is created.
			lastErr = nil
			return false, nil
		}
		kubeconfig, sig = kc, s
		return true, nil
	}
	if err := wait.PollUntilContextTimeout(ctx, d.Interval, d.Timeout, true, poll); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, ctx.Err() // interrupted, not timed out
		}
		msg := fmt.Sprintf("cluster-info signature for token %s never appeared within %s", d.TokenID, d.Timeout)
		if lastErr != nil {
			msg += fmt.Sprintf(" (last error: %v)", lastErr)
		}
		return nil, errors.New(msg)
	}
	if !jws.DetachedTokenIsValid(sig, kubeconfig, d.TokenID, d.TokenSecret) {
		return nil, fmt.Errorf("cluster-info signature for token %s is invalid", d.TokenID)
	}
	info, err := parseClusterInfoKubeconfig([]byte(kubeconfig))
	if err != nil {
		return nil, err
	}
	if err := checkPins(info.CAPEM, d.Pins); err != nil {
		return nil, err
	}

	// Now that the CA is trusted, make sure the server we talk to holds a certificate of it:
	// the unverified answer could have come from anyone who knew the token.
	secure, err := clusterInfoClient(d.Server, info.CAPEM)
	if err != nil {
		return nil, err
	}
	cm, err := secure.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("cluster-info over TLS verified by the discovered CA: %v", err)
	}
	if cm.Data[bootstrapapi.KubeConfigKey] != kubeconfig {
		return nil, fmt.Errorf("cluster-info read over verified TLS differs from the signed one")
	}
	return info, nil
}

// clusterInfoClient is an anonymous clientset for server: without caPEM it skips TLS
// verification, as kubeadm must before it knows the CA.
func clusterInfoClient(server string, caPEM []byte) (kubernetes.Interface, error) {
	cfg := &rest.Config{Host: server, Timeout: 10 * time.Second, UserAgent: userAgent}
	if caPEM == nil {
		cfg.TLSClientConfig.Insecure = true
	} else {
		cfg.TLSClientConfig.CAData = caPEM
	}
	return kubernetes.NewForConfig(cfg)
}

// parseClusterInfoKubeconfig takes the CA and endpoint of the one cluster cluster-info holds.
func parseClusterInfoKubeconfig(kubeconfig []byte) (*ClusterInfo, error) {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("cluster-info kubeconfig: %v", err)
	}
	if len(cfg.Clusters) != 1 {
		return nil, fmt.Errorf("cluster-info kubeconfig has %d clusters, want 1", len(cfg.Clusters))
	}
	var info *ClusterInfo
	for _, c := range cfg.Clusters {
		info = &ClusterInfo{CAPEM: c.CertificateAuthorityData, Server: c.Server}
	}
	if len(info.CAPEM) == 0 {
		return nil, fmt.Errorf("cluster-info kubeconfig has no certificate-authority-data")
	}
	return info, nil
}

// PublicKeyPin is kubeadm's --discovery-token-ca-cert-hash of a certificate: the SHA-256 of its
// DER SubjectPublicKeyInfo. Pinning the key rather than the certificate survives re-issuing the
// CA certificate with the same key.
func PublicKeyPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// checkPins requires one certificate of the CA bundle to match one of the pins.
func checkPins(caPEM []byte, pins []string) error {
	certs, err := certutil.ParseCertsPEM(caPEM)
	if err != nil {
		return fmt.Errorf("cluster-info CA: %v", err)
	}
	var got []string
	for _, c := range certs {
		p := PublicKeyPin(c)
		for _, want := range pins {
			if p == want {
				return nil
			}
		}
		got = append(got, p)
	}
	return fmt.Errorf("CA public key pin mismatch: got %s, want %s", strings.Join(got, ","), strings.Join(pins, ","))
}
