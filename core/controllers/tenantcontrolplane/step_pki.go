package tenantcontrolplane

import (
	"context"
	"fmt"
	"net"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/exposure"
	"github.com/openhcp/kamaji/core/tenantpki"
)

// Reasons of the CertificatesReady condition.
const (
	ReasonCertificatesFailed = "CertificatesFailed"
	ReasonCertificatesIssued = "CertificatesIssued"
)

// clock adapts the reconciler's injectable time source to tenantpki.
type clock func() time.Time

func (c clock) Now() time.Time { return c() }

// stepPKI keeps the tenant's CAs, certificates and service-account key: created when absent,
// reissued before the renewal deadline, when their SANs change, when the CA they chain to
// changed, or on request (certs.kamaji.clastix.io/rotate on a Secret, for that Secret: on the CA
// Secret it rotates the CA and so every leaf; stepRotationRequest passes a request on the TCP on
// to every leaf Secret).
func stepPKI(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionCertificatesReady
	clk := clock(r.now)
	base := tenantpki.Options{RenewBefore: r.Options.CertificateExpirationDeadline}
	certs := &p.status.Certificates
	var reissued []string

	ensureOne := func(kind tenantpki.Kind, st *kamajiv1alpha1.CertificatePrivateKeyPairStatus, ensure ensureFunc) (map[string][]byte, error) {
		name := tenantpki.SecretName(p.tcp.Name, kind)
		cur, err := r.readSecret(ctx, p, name)
		if err != nil {
			return nil, err
		}
		opts := base
		opts.Force = cur.rotate
		data, reason, err := ensure(cur, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if cur.paused {
			data, reason = cur.data, tenantpki.Unchanged
		}
		if err := r.writeSecret(ctx, p, cur, data, reason); err != nil {
			return nil, err
		}
		if reason.Reissued() {
			reissued = append(reissued, fmt.Sprintf("%s (%s)", name, reason))
		}
		if st != nil {
			sum := tenantpki.Checksum(data)
			if st.Checksum != sum || st.SecretName != name {
				st.LastUpdate = metav1.NewTime(p.now)
			}
			st.SecretName, st.Checksum = name, sum
		}
		return data, nil
	}

	// The CA: a rotation request on its Secret (or its renewal) replaces it, every leaf
	// follows, and the old CA stays trusted until the overlap ends (caoverlap.go).
	caData, err := r.ensureCA(ctx, p, ensureOne)
	if err != nil {
		return fail(cond, ReasonCertificatesFailed, err)
	}
	ca, err := tenantpki.LoadCA(caData)
	if err != nil {
		return fail(cond, ReasonCertificatesFailed, fmt.Errorf("the tenant CA is unusable: %w", err))
	}
	p.caCross = caData[tenantpki.KeyCACrossCert]
	fpData, err := ensureOne(tenantpki.FrontProxyCA, &certs.FrontProxyCA, func(cur ownedSecret, opts tenantpki.Options) (map[string][]byte, tenantpki.Reason, error) {
		return tenantpki.EnsureFrontProxyCA(cur.data, opts, clk)
	})
	if err != nil {
		return fail(cond, ReasonCertificatesFailed, err)
	}
	fpCA, err := tenantpki.LoadKeyPair(fpData, tenantpki.KeyFrontProxyCACert, tenantpki.KeyFrontProxyCAKey)
	if err != nil {
		return fail(cond, ReasonCertificatesFailed, fmt.Errorf("the front-proxy CA is unusable: %w", err))
	}
	// From the status as read: a fresh one would have no checksum, and its lastUpdate would be
	// set to now on every pass, a status write that brings the next pass (a loop at rest).
	saStatus := (*kamajiv1alpha1.CertificatePrivateKeyPairStatus)(&certs.SA)
	if _, err := ensureOne(tenantpki.ServiceAccount, saStatus, func(cur ownedSecret, opts tenantpki.Options) (map[string][]byte, tenantpki.Reason, error) {
		return tenantpki.EnsureServiceAccountKey(cur.data, opts)
	}); err != nil {
		return fail(cond, ReasonCertificatesFailed, err)
	}

	sans := tenantpki.APIServerSANs(p.tcp, p.service.Name, p.service.Spec.ClusterIP, apiServerExtraSANs(p)...)
	leaves := []struct {
		kind   tenantpki.Kind
		st     *kamajiv1alpha1.CertificatePrivateKeyPairStatus
		ensure ensureFunc
	}{
		{tenantpki.APIServer, &certs.APIServer, chained(p, tenantpki.KeyAPIServerCert, func(cur ownedSecret, o tenantpki.Options) (map[string][]byte, tenantpki.Reason, error) {
			return tenantpki.EnsureAPIServer(cur.data, ca, sans, o, clk)
		})},
		{tenantpki.APIServerKubeletClient, &certs.APIServerKubeletClient, chained(p, tenantpki.KeyAPIServerKubeletClientCert, func(cur ownedSecret, o tenantpki.Options) (map[string][]byte, tenantpki.Reason, error) {
			return tenantpki.EnsureAPIServerKubeletClient(cur.data, ca, o, clk)
		})},
		{tenantpki.FrontProxyClient, &certs.FrontProxyClient, func(cur ownedSecret, o tenantpki.Options) (map[string][]byte, tenantpki.Reason, error) {
			return tenantpki.EnsureFrontProxyClient(cur.data, fpCA, o, clk)
		}},
	}
	for _, l := range leaves {
		if _, err := ensureOne(l.kind, l.st, l.ensure); err != nil {
			return fail(cond, ReasonCertificatesFailed, err)
		}
	}
	p.ca = ca
	msg := "all certificates are valid"
	if len(reissued) > 0 {
		msg = fmt.Sprintf("issued %v", reissued)
	}
	p.setCondition(cond, metav1.ConditionTrue, ReasonCertificatesIssued, msg)
	return nil
}

// apiServerExtraSANs: the load balancer's addresses and the public endpoint's host.
func apiServerExtraSANs(p *pass) []string {
	var out []string
	for _, ing := range p.service.Status.LoadBalancer.Ingress {
		if ing.IP != "" {
			out = append(out, ing.IP)
		}
	}
	if host, _, err := net.SplitHostPort(p.endpoint); err == nil {
		out = append(out, host)
	}
	if p.tcp.Spec.ControlPlane.Ingress != nil || p.tcp.Spec.ControlPlane.Gateway != nil {
		out = append(out, exposure.Hostname(p.tcp))
	}
	return out
}
