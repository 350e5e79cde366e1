package local

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/openhcp/kamaji/core/pki"
)

const pkiValidity = 365 * 24 * time.Hour

// adminPKI is the admin plane's certificates (one CA) and the DataStore etcd's (another CA,
// as a production datastore would have its own).
type adminPKI struct {
	CA      *pki.KeyPair
	Admin   *pki.KeyPair
	StoreCA *pki.KeyPair
	Root    *pki.KeyPair
}

// loadOrCreate reads a key pair from dir/name.{crt,key}, or issues it with make.
func loadOrCreate(dir, name string, make func() (*pki.KeyPair, error)) (*pki.KeyPair, error) {
	crt, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	certPEM, err1 := os.ReadFile(crt)
	keyPEM, err2 := os.ReadFile(key)
	if err1 == nil && err2 == nil {
		return pki.ParseKeyPair(certPEM, keyPEM)
	}
	if !errors.Is(err1, os.ErrNotExist) && err1 != nil {
		return nil, err1
	}
	kp, err := make()
	if err != nil {
		return nil, err
	}
	keyPEM, err = kp.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		return nil, err
	}
	return kp, os.WriteFile(crt, kp.CertPEM(), 0o644)
}

func server(ca *pki.KeyPair, cn string, dns []string, ips ...string) func() (*pki.KeyPair, error) {
	return func() (*pki.KeyPair, error) {
		req := pki.Request{CommonName: cn, DNSNames: dns, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, Validity: pkiValidity}
		for _, ip := range ips {
			req.IPs = append(req.IPs, net.ParseIP(ip))
		}
		return ca.Issue(req)
	}
}

func clientCert(ca *pki.KeyPair, cn string, orgs ...string) func() (*pki.KeyPair, error) {
	return func() (*pki.KeyPair, error) {
		return ca.Issue(pki.Request{CommonName: cn, Organization: orgs, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: pkiValidity})
	}
}

// loadStorePKI loads, on a running plane (runningPlane, which reads no PKI), the datastore's CA
// and root client certificate that storeHTTPClient needs; it creates nothing.
func (p *Plane) loadStorePKI() error {
	if p.pki != nil {
		return nil
	}
	dir := p.cfg.path("pki", "datastore")
	missing := func() (*pki.KeyPair, error) { return nil, fmt.Errorf("no datastore certificates in %s", dir) }
	ca, err := loadOrCreate(dir, "ca", missing)
	if err != nil {
		return err
	}
	root, err := loadOrCreate(dir, "root", missing)
	if err != nil {
		return err
	}
	p.pki = &adminPKI{StoreCA: ca, Root: root}
	return nil
}

// ensurePKI creates what is missing; an existing state keeps its certificates.
func (p *Plane) ensurePKI() error {
	dir := p.cfg.path("pki")
	ca, err := loadOrCreate(dir, "ca", func() (*pki.KeyPair, error) { return pki.NewCA("kamaji-local-ca", pkiValidity, "") })
	if err != nil {
		return err
	}
	if _, err := loadOrCreate(dir, "apiserver", server(ca, "kube-apiserver",
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		"127.0.0.1", p.cfg.Gateway, p.cfg.APIServiceIP())); err != nil {
		return err
	}
	admin, err := loadOrCreate(dir, "admin", clientCert(ca, "kamaji-local-admin", "system:masters"))
	if err != nil {
		return err
	}
	// The apiserver's identity at the kubelets (logs, exec, port-forward on a kubelet node).
	if _, err := loadOrCreate(dir, "apiserver-kubelet-client", clientCert(ca, "kube-apiserver-kubelet-client", "system:masters")); err != nil {
		return err
	}
	if _, err := loadOrCreate(dir, "sa", clientCert(ca, "service-accounts")); err != nil {
		return err
	}
	storeDir := p.cfg.path("pki", "datastore")
	storeCA, err := loadOrCreate(storeDir, "ca", func() (*pki.KeyPair, error) { return pki.NewCA("kamaji-local-datastore-ca", pkiValidity, "") })
	if err != nil {
		return err
	}
	if _, err := loadOrCreate(storeDir, "server", server(storeCA, "etcd", []string{"localhost"}, "127.0.0.1", p.cfg.Gateway)); err != nil {
		return err
	}
	root, err := loadOrCreate(storeDir, "root", clientCert(storeCA, "root"))
	if err != nil {
		return err
	}
	p.pki = &adminPKI{CA: ca, Admin: admin, StoreCA: storeCA, Root: root}

	keyPEM, err := admin.KeyPEM()
	if err != nil {
		return err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: p.cfg.APIServerURL(), CertificateAuthorityData: ca.CertPEM()}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: admin.CertPEM(), ClientKeyData: keyPEM}
	kc.Contexts["admin@local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "admin"}
	kc.CurrentContext = "admin@local"
	if err := clientcmd.WriteToFile(*kc, p.cfg.AdminKubeconfig()); err != nil {
		return err
	}
	p.rest = &rest.Config{
		Host:            p.cfg.APIServerURL(),
		TLSClientConfig: rest.TLSClientConfig{CAData: ca.CertPEM(), CertData: admin.CertPEM(), KeyData: keyPEM},
		QPS:             100, Burst: 200,
	}
	return nil
}
