// Package certs lists the certificates a TenantControlPlane's Secrets hold, with their
// expiry: the PKI Secrets (every *.crt key) and the client certificates embedded in its
// kubeconfig Secrets.
package certs

import (
	"crypto/x509"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	corekubeconfig "github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/tenantpki"
)

// Cert is one certificate found in a Secret.
type Cert struct {
	Secret   string // Secret name
	Key      string // data key
	Subject  string // common name, and organisations when any
	Issuer   string // issuer common name
	NotAfter time.Time
	IsCA     bool
}

// Source is a Secret to read and how: PKI Secrets hold PEM under *.crt keys, kubeconfig
// Secrets hold kubeconfigs whose users embed a client certificate.
type Source struct {
	Name       string
	Kubeconfig bool
}

// Sources lists the TCP's certificate and kubeconfig Secrets: the names its status records,
// else the names the core gives them.
func Sources(tcp *kamajiv1alpha1.TenantControlPlane) []Source {
	st := tcp.Status.Certificates
	pick := func(recorded string, k tenantpki.Kind) string {
		if recorded != "" {
			return recorded
		}
		return tenantpki.SecretName(tcp.Name, k)
	}
	out := []Source{
		{Name: pick(st.CA.SecretName, tenantpki.CA)},
		{Name: pick(st.APIServer.SecretName, tenantpki.APIServer)},
		{Name: pick(st.APIServerKubeletClient.SecretName, tenantpki.APIServerKubeletClient)},
		{Name: pick(st.FrontProxyCA.SecretName, tenantpki.FrontProxyCA)},
		{Name: pick(st.FrontProxyClient.SecretName, tenantpki.FrontProxyClient)},
	}
	if n := tcp.Status.Storage.Certificate.SecretName; n != "" {
		out = append(out, Source{Name: n})
	}
	if n := tcp.Status.Addons.Konnectivity.Certificate.SecretName; n != "" {
		out = append(out, Source{Name: n})
	}
	kc := tcp.Status.KubeConfig
	for _, n := range []string{
		orDefault(kc.Admin.SecretName, corekubeconfig.AdminSecretName(tcp.Name)),
		orDefault(kc.ControllerManager.SecretName, corekubeconfig.ControllerManagerSecretName(tcp.Name)),
		orDefault(kc.Scheduler.SecretName, corekubeconfig.SchedulerSecretName(tcp.Name)),
	} {
		out = append(out, Source{Name: n, Kubeconfig: true})
	}
	if n := tcp.Status.Addons.Konnectivity.Kubeconfig.SecretName; n != "" {
		out = append(out, Source{Name: n, Kubeconfig: true})
	}
	return out
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// FromSecret reads the certificates of one Secret, in key order. A key that does not parse is
// reported as an error naming it; the others are still returned.
func FromSecret(s *corev1.Secret, kubeconfig bool) ([]Cert, error) {
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Cert
	var errs []string
	for _, k := range keys {
		var certs []*x509.Certificate
		var err error
		switch {
		case kubeconfig:
			certs, err = fromKubeconfig(s.Data[k])
		case strings.HasSuffix(k, ".crt"):
			certs, err = pki.ParseCerts(s.Data[k])
		default:
			continue // keys, public keys
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", k, err))
			continue
		}
		for _, c := range certs {
			out = append(out, Cert{
				Secret: s.Name, Key: k, Subject: subject(c), Issuer: c.Issuer.CommonName,
				NotAfter: c.NotAfter, IsCA: c.IsCA,
			})
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("Secret %s: %s", s.Name, strings.Join(errs, "; "))
	}
	return out, nil
}

func subject(c *x509.Certificate) string {
	s := c.Subject.CommonName
	if len(c.Subject.Organization) > 0 {
		s += " (" + strings.Join(c.Subject.Organization, ",") + ")"
	}
	return s
}

// fromKubeconfig returns the client certificates the kubeconfig's users embed.
func fromKubeconfig(data []byte) ([]*x509.Certificate, error) {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("not a kubeconfig: %w", err)
	}
	names := make([]string, 0, len(cfg.AuthInfos))
	for n := range cfg.AuthInfos {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []*x509.Certificate
	for _, n := range names {
		if d := cfg.AuthInfos[n].ClientCertificateData; len(d) > 0 {
			c, err := pki.ParseCerts(d)
			if err != nil {
				return nil, fmt.Errorf("user %s: %w", n, err)
			}
			out = append(out, c...)
		}
	}
	return out, nil
}
