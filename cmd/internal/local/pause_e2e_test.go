package local_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/tenantpki"
)

func init() {
	registerPlaneSubtest("pause and resume", testPauseResume)
}

// testPauseResume pauses tenant-00, then gives tenant-00 and, after it, tenant-01 the same new
// certSAN. tenant-01 is reconciled (new generation observed, certificate reissued, rolled out);
// once the manager's TCP work queue is empty and no reconcile runs, every event about tenant-00
// has been handled, yet tenant-00 still observes its old generation with the old certificate
// and Deployment. Removing the annotation lets the change land.
func testPauseResume(t *testing.T, e *e2e) {
	const paused, control = "tenant-00", "tenant-01"
	const san = "pause-e2e.kamaji.local"

	depGen := e.deploymentGeneration(t, paused)
	e.patchTCP(t, paused, func(tcp *kamajiv1alpha1.TenantControlPlane) {
		metav1.SetMetaDataAnnotation(&tcp.ObjectMeta, kamajiv1alpha1.PausedAnnotation, "e2e")
	})
	pausedGen := e.patchTCP(t, paused, func(tcp *kamajiv1alpha1.TenantControlPlane) {
		tcp.Spec.NetworkProfile.CertSANs = append(tcp.Spec.NetworkProfile.CertSANs, san)
	})
	controlGen := e.patchTCP(t, control, func(tcp *kamajiv1alpha1.TenantControlPlane) {
		tcp.Spec.NetworkProfile.CertSANs = append(tcp.Spec.NetworkProfile.CertSANs, san)
	})

	e.waitReconciled(t, control, controlGen, san)
	url := e.managerMetricsURL(t)
	eventually(t, "the manager's TenantControlPlane queue to be idle", func() error { return managerIdle(url) })

	tcp := e.tcp(t, paused)
	if tcp.Status.ObservedGeneration >= pausedGen {
		t.Errorf("paused %s observed generation %d (generation %d): it was reconciled", paused, tcp.Status.ObservedGeneration, pausedGen)
	}
	if sans := e.certSecretSANs(t, paused); slices.Contains(sans, san) {
		t.Errorf("paused %s: its apiserver certificate was reissued with %s: %v", paused, san, sans)
	}
	if g := e.deploymentGeneration(t, paused); g != depGen {
		t.Errorf("paused %s: its Deployment changed (generation %d, was %d)", paused, g, depGen)
	}
	if sans, err := servedSANs(tcp.Status.ControlPlaneEndpoint); err != nil || slices.Contains(sans, san) {
		t.Errorf("paused %s serves SANs %v (%v)", paused, sans, err)
	}

	e.patchTCP(t, paused, func(tcp *kamajiv1alpha1.TenantControlPlane) {
		delete(tcp.Annotations, kamajiv1alpha1.PausedAnnotation)
	})
	e.waitReconciled(t, paused, pausedGen, san)
	eventually(t, "kubectl against "+paused, func() error {
		_, err := e.kubectlErr(paused, "get", "ns")
		return err
	})
}

// patchTCP applies change to the TCP with a merge patch and returns its new generation.
func (e *e2e) patchTCP(t *testing.T, name string, change func(*kamajiv1alpha1.TenantControlPlane)) int64 {
	t.Helper()
	tcp := e.tcp(t, name)
	patch := client.MergeFrom(tcp.DeepCopy())
	change(tcp)
	if err := e.cl.Patch(ctx(t), tcp, patch); err != nil {
		t.Fatal(err)
	}
	return tcp.Generation
}

// waitReconciled waits until the TCP observed generation gen, is Ready again, and its
// apiserver presents a certificate with san through its Service.
func (e *e2e) waitReconciled(t *testing.T, name string, gen int64, san string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s to observe generation %d and be Ready", name, gen), func() error {
		tcp := e.tcp(t, name)
		s := tcp.Status.Kubernetes.Version.Status
		if tcp.Status.ObservedGeneration < gen || s == nil || *s != kamajiv1alpha1.VersionReady {
			return fmt.Errorf("observed generation %d, status %v", tcp.Status.ObservedGeneration, s)
		}
		return nil
	})
	if sans := e.certSecretSANs(t, name); !slices.Contains(sans, san) {
		t.Fatalf("%s: apiserver certificate SANs %v, without %s", name, sans, san)
	}
	endpoint := e.tcp(t, name).Status.ControlPlaneEndpoint
	eventually(t, name+" to serve a certificate for "+san, func() error {
		sans, err := servedSANs(endpoint)
		if err == nil && !slices.Contains(sans, san) {
			err = fmt.Errorf("served SANs %v", sans)
		}
		return err
	})
}

func (e *e2e) certSecretSANs(t *testing.T, name string) []string {
	t.Helper()
	return e.apiServerCert(t, name).DNSNames
}

// apiServerCert is the certificate in the TCP's apiserver Secret.
func (e *e2e) apiServerCert(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	s, err := e.cs.CoreV1().Secrets("default").Get(ctx(t), tenantpki.SecretName(name, tenantpki.APIServer), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(s.Data[tenantpki.KeyAPIServerCert])
	if block == nil {
		t.Fatalf("secret %s has no certificate", s.Name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func (e *e2e) deploymentGeneration(t *testing.T, name string) int64 {
	t.Helper()
	d, err := e.cs.AppsV1().Deployments("default").Get(ctx(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Generation
}

// servedSANs are the DNS names of the certificate an apiserver presents at endpoint.
func servedSANs(endpoint string) ([]string, error) {
	d := &net.Dialer{Timeout: 3 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", endpoint, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading the certificate only
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].DNSNames, nil
}

// managerIdle answers nil when the manager's TenantControlPlane work queue is empty and no
// reconcile of it runs: every event it was sent so far has been handled.
func managerIdle(url string) error {
	resp, err := http.Get(url) //nolint:noctx // the manager's own server, on the pods' bridge
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	depth, active := -1.0, -1.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		value := func() float64 {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
		switch {
		case strings.HasPrefix(line, "workqueue_depth{") && strings.Contains(line, `name="tenantcontrolplane"`):
			depth = value()
		case strings.HasPrefix(line, "controller_runtime_active_workers{") && strings.Contains(line, `controller="tenantcontrolplane"`):
			active = value()
		}
	}
	if depth != 0 || active != 0 {
		return fmt.Errorf("tenantcontrolplane queue depth %v, active workers %v (-1: metric missing)", depth, active)
	}
	return nil
}
