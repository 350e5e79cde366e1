// Package jointoken makes what `kubeadm token create --print-join-command` makes: a bootstrap
// token Secret for kube-system (kubeadm's format, usages and group), the CA pins
// (sha256 of each CA certificate's SubjectPublicKeyInfo) and the `kubeadm join` line.
package jointoken

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"

	"github.com/openhcp/kamaji/core/pki"
)

// NodeGroup is the extra group kubeadm gives the tokens nodes join with; the tenant's
// bootstrap-token phase binds it (get nodes, create CSRs, auto-approval).
const NodeGroup = "system:bootstrappers:kubeadm:default-node-token"

// DefaultTTL is kubeadm's.
const DefaultTTL = 24 * time.Hour

// Token is a bootstrap token, "<id>.<secret>".
type Token struct {
	ID, Secret string
}

func (t Token) String() string { return bootstraputil.TokenFromIDAndSecret(t.ID, t.Secret) }

// New draws a random token.
func New() (Token, error) {
	s, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return Token{}, err
	}
	return Parse(s)
}

// Parse checks a token given by the user.
func Parse(s string) (Token, error) {
	if !bootstraputil.IsValidBootstrapToken(s) {
		return Token{}, fmt.Errorf("%q is not a bootstrap token (want %s)", s, bootstrapapi.BootstrapTokenPattern)
	}
	id, secret, _ := strings.Cut(s, ".")
	return Token{ID: id, Secret: secret}, nil
}

// Secret is the bootstrap token Secret kubeadm would create in kube-system: usable for
// authentication and for signing cluster-info, in the node group, expiring after ttl (never
// when ttl is 0).
func Secret(t Token, ttl time.Duration, now time.Time, description string) *corev1.Secret {
	data := map[string][]byte{
		bootstrapapi.BootstrapTokenIDKey:               []byte(t.ID),
		bootstrapapi.BootstrapTokenSecretKey:           []byte(t.Secret),
		bootstrapapi.BootstrapTokenUsageAuthentication: []byte("true"),
		bootstrapapi.BootstrapTokenUsageSigningKey:     []byte("true"),
		bootstrapapi.BootstrapTokenExtraGroupsKey:      []byte(NodeGroup),
	}
	if description != "" {
		data[bootstrapapi.BootstrapTokenDescriptionKey] = []byte(description)
	}
	if ttl > 0 {
		data[bootstrapapi.BootstrapTokenExpirationKey] = []byte(now.Add(ttl).UTC().Format(time.RFC3339))
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstraputil.BootstrapTokenSecretName(t.ID), Namespace: metav1.NamespaceSystem},
		Type:       bootstrapapi.SecretTypeBootstrapToken,
		Data:       data,
	}
}

// CAHashes are the discovery pins of every certificate in a PEM bundle, kubeadm's format:
// "sha256:" and the hex SHA-256 of the certificate's SubjectPublicKeyInfo.
func CAHashes(caPEM []byte) ([]string, error) {
	certs, err := pki.ParseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("the tenant CA: %w", err)
	}
	out := make([]string, 0, len(certs))
	for _, c := range certs {
		out = append(out, Hash(c))
	}
	return out, nil
}

// Hash is one certificate's pin.
func Hash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Command is the `kubeadm join` line: the endpoint (host:port), the token and one
// --discovery-token-ca-cert-hash per CA certificate, as kubeadm prints it.
func Command(endpoint string, t Token, hashes []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kubeadm join %s --token %s", endpoint, t)
	for _, h := range hashes {
		fmt.Fprintf(&b, " --discovery-token-ca-cert-hash %s", h)
	}
	return b.String()
}
