package kubeconfiggenerator

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/tenantpki"
)

// clock adapts the reconciler's time source to tenantpki.
type clock func() time.Time

func (c clock) Now() time.Time { return c() }

// generate keeps the TCP's Secret current and returns when its certificate is due for renewal.
// Nothing is written when the Secret already holds what would be built now. Any error is the
// TCP's entry in status.errors.
func (r *Reconciler) generate(ctx context.Context, gen *kamajiv1alpha1.KubeconfigGenerator, tcp *kamajiv1alpha1.TenantControlPlane, now time.Time) (time.Time, error) {
	name := SecretName(tcp.Name, gen.Name)
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return time.Time{}, fmt.Errorf("the Secret name %q is invalid: %s", name, strings.Join(msgs, "; "))
	}
	user, groups, err := identity(gen, tcp)
	if err != nil {
		return time.Time{}, err
	}
	ca, err := r.tenantCA(ctx, tcp)
	if err != nil {
		return time.Time{}, err
	}
	server, err := r.server(ctx, gen, tcp)
	if err != nil {
		return time.Time{}, err
	}
	cur, err := r.current(ctx, gen, tcp, name)
	if err != nil {
		return time.Time{}, err
	}
	if cur.paused {
		return now.Add(maxRecheck), nil // kept as it is while kamaji.clastix.io/paused is on it
	}

	opts := tenantpki.Options{RenewBefore: r.Options.CertificateExpirationDeadline, Force: cur.rotate}
	oldCert, oldKey := clientPair(cur.data())
	profile := tenantpki.Profile{CommonName: user, Organization: groups, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	certPEM, keyPEM, _, err := tenantpki.EnsureLeaf(oldCert, oldKey, ca, profile, opts, clock(func() time.Time { return now }))
	if err != nil {
		return time.Time{}, fmt.Errorf("issuing the client certificate: %w", err)
	}
	conf, err := kubeconfig.Build(server, ca.TrustPEM(), user, certPEM, keyPEM, tcp.Name)
	if err != nil {
		return time.Time{}, err
	}
	if !cur.upToDate(gen, tcp, conf) {
		if err := r.write(ctx, gen, tcp, name, conf); err != nil {
			return time.Time{}, fmt.Errorf("writing Secret %s: %w", name, err)
		}
	}
	if cur.rotate {
		if err := apply.RemoveAnnotation(ctx, r.Client, cur.obj, kamajiv1alpha1.RotateCertificatesAnnotation); err != nil {
			return time.Time{}, err
		}
		r.secretData().Remember(cur.obj)
	}
	cert, err := pki.ParseCert(certPEM)
	if err != nil {
		return time.Time{}, err
	}
	renewBefore := tenantpki.Options{RenewBefore: r.Options.CertificateExpirationDeadline}.WithDefaults().RenewBefore
	return cert.NotAfter.Add(-renewBefore), nil
}

// identity resolves the user and the groups against the TCP. The TCP is converted to the map
// fromDefinition paths walk only when a value has such a path: with plain strings, a pass over
// many TCPs converts none.
func identity(gen *kamajiv1alpha1.KubeconfigGenerator, tcp *kamajiv1alpha1.TenantControlPlane) (string, []string, error) {
	var def definition
	resolve := func(v kamajiv1alpha1.CompoundValue, field string) (string, error) {
		if v.FromDefinition != "" && def == nil {
			d, err := definitionOf(tcp)
			if err != nil {
				return "", err
			}
			def = d
		}
		return def.resolve(v, field)
	}
	user, err := resolve(gen.Spec.User, "spec.user")
	if err != nil {
		return "", nil, err
	}
	var groups []string
	for i, g := range gen.Spec.Groups {
		v, err := resolve(g, fmt.Sprintf("spec.groups[%d]", i))
		if err != nil {
			return "", nil, err
		}
		groups = append(groups, v)
	}
	return user, groups, nil
}

// tenantCA reads the tenant CA (<tcp>-ca) the TCP controller keeps.
func (r *Reconciler) tenantCA(ctx context.Context, tcp *kamajiv1alpha1.TenantControlPlane) (*pki.KeyPair, error) {
	name := tenantpki.SecretName(tcp.Name, tenantpki.CA)
	s := &corev1.Secret{}
	if err := r.getSecret(ctx, client.ObjectKey{Namespace: tcp.Namespace, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("the tenant CA Secret %s does not exist yet", name)
		}
		return nil, err
	}
	ca, err := tenantpki.LoadCA(s.Data)
	if err != nil {
		return nil, fmt.Errorf("the tenant CA Secret %s is unusable: %w", name, err)
	}
	return ca, nil
}

// getSecret reads a Secret from the cache and gives it its data (secretData); NotFound when it
// is gone from either.
func (r *Reconciler) getSecret(ctx context.Context, key client.ObjectKey, s *corev1.Secret) error {
	if err := r.Client.Get(ctx, key, s); err != nil {
		return err
	}
	return r.secretData().Fill(ctx, s)
}

// server is the URL of the kubeconfig under controlPlaneEndpointFrom in the TCP's admin
// kubeconfig Secret.
func (r *Reconciler) server(ctx context.Context, gen *kamajiv1alpha1.KubeconfigGenerator, tcp *kamajiv1alpha1.TenantControlPlane) (string, error) {
	from := gen.Spec.ControlPlaneEndpointFrom
	if from == "" {
		from = kamajiv1alpha1.DefaultControlPlaneEndpointFrom
	}
	name := tcp.Status.KubeConfig.Admin.SecretName
	if name == "" {
		name = kubeconfig.AdminSecretName(tcp.Name)
	}
	s := &corev1.Secret{}
	if err := r.getSecret(ctx, client.ObjectKey{Namespace: tcp.Namespace, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("the admin kubeconfig Secret %s does not exist yet", name)
		}
		return "", err
	}
	data, ok := s.Data[from]
	if !ok {
		return "", fmt.Errorf("spec.controlPlaneEndpointFrom: the admin kubeconfig Secret %s has no key %q", name, from)
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return "", fmt.Errorf("%s/%s is not a kubeconfig: %w", name, from, err)
	}
	if ctx := cfg.Contexts[cfg.CurrentContext]; ctx != nil {
		if c := cfg.Clusters[ctx.Cluster]; c != nil && c.Server != "" {
			return c.Server, nil
		}
	}
	return "", fmt.Errorf("%s/%s has no server in its current context", name, from)
}

// clientPair is the client certificate and key of a kubeconfig's current context; nil when
// there is none (the Secret is new or holds something else, and is then reissued).
func clientPair(conf []byte) (cert, key []byte) {
	if len(conf) == 0 {
		return nil, nil
	}
	cfg, err := clientcmd.Load(conf)
	if err != nil {
		return nil, nil
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.AuthInfos[ctx.AuthInfo] == nil {
		return nil, nil
	}
	a := cfg.AuthInfos[ctx.AuthInfo]
	return a.ClientCertificateData, a.ClientKeyData
}

// existing is the generated Secret as found.
type existing struct {
	obj    *corev1.Secret // nil when absent
	paused bool
	rotate bool
}

func (e existing) data() []byte {
	if e.obj == nil {
		return nil
	}
	return e.obj.Data[SecretKey]
}

// current reads the TCP's generated Secret. The cache only holds labelled Secrets: one it
// misses is looked for uncached, so that a Secret of the same name that is not this
// generator's (a user's, another TCP's, another generator's) is never written over.
func (r *Reconciler) current(ctx context.Context, gen *kamajiv1alpha1.KubeconfigGenerator, tcp *kamajiv1alpha1.TenantControlPlane, name string) (existing, error) {
	key := client.ObjectKey{Namespace: tcp.Namespace, Name: name}
	s := &corev1.Secret{}
	err := r.Client.Get(ctx, key, s)
	_, rotate := s.Annotations[kamajiv1alpha1.RotateCertificatesAnnotation]
	if apierrors.IsNotFound(err) || (err == nil && rotate) {
		// Absent from the cache, or a rotation request that must be current (the cache may
		// still show one already honoured).
		s = &corev1.Secret{}
		err = r.reader().Get(ctx, key, s)
	}
	if apierrors.IsNotFound(err) {
		return existing{}, nil
	}
	if err != nil {
		return existing{}, err
	}
	if s.Labels[kamajiv1alpha1.KubeconfigGeneratorLabel] != gen.Name || s.Labels[kamajiv1alpha1.NameLabel] != tcp.Name {
		return existing{}, fmt.Errorf("Secret %s already exists and is not this generator's (label %s=%s, %s=%s expected): not overwritten",
			name, kamajiv1alpha1.KubeconfigGeneratorLabel, gen.Name, kamajiv1alpha1.NameLabel, tcp.Name)
	}
	if err := r.secretData().Fill(ctx, s); err != nil {
		if apierrors.IsNotFound(err) {
			return existing{}, nil // deleted since the cache showed it
		}
		return existing{}, err
	}
	_, paused := s.Annotations[kamajiv1alpha1.PausedAnnotation]
	_, rotate = s.Annotations[kamajiv1alpha1.RotateCertificatesAnnotation]
	return existing{obj: s, paused: paused, rotate: rotate}, nil
}

// upToDate tells whether the Secret already is what write would declare.
func (e existing) upToDate(gen *kamajiv1alpha1.KubeconfigGenerator, tcp *kamajiv1alpha1.TenantControlPlane, conf []byte) bool {
	s := e.obj
	if s == nil || len(s.Data) != 1 || !bytes.Equal(s.Data[SecretKey], conf) || s.Type != corev1.SecretTypeOpaque {
		return false
	}
	for k, v := range secretLabels(gen, tcp) {
		if s.Labels[k] != v {
			return false
		}
	}
	for _, o := range s.OwnerReferences {
		if o.UID == gen.UID && o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

// secretLabels are the generated Secret's labels: ours (the manager caches only those), the
// TCP's name and the generator's.
func secretLabels(gen *kamajiv1alpha1.KubeconfigGenerator, tcp *kamajiv1alpha1.TenantControlPlane) map[string]string {
	return map[string]string{
		kamajiv1alpha1.ManagedByLabel:           kamajiv1alpha1.ManagedByValue,
		kamajiv1alpha1.NameLabel:                tcp.Name,
		kamajiv1alpha1.KubeconfigGeneratorLabel: gen.Name,
	}
}

// write declares the whole Secret, owned by the generator (deleting the generator deletes its
// Secrets).
func (r *Reconciler) write(ctx context.Context, gen *kamajiv1alpha1.KubeconfigGenerator, tcp *kamajiv1alpha1.TenantControlPlane, name string, conf []byte) error {
	t := true
	s := &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: tcp.Namespace, Labels: secretLabels(gen, tcp),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: kamajiv1alpha1.GroupVersion.String(), Kind: "KubeconfigGenerator",
				Name: gen.Name, UID: gen.UID, Controller: &t,
			}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{SecretKey: conf},
	}
	if err := apply.Apply(ctx, r.Client, s); err != nil {
		return err
	}
	r.secretData().Remember(s)
	return nil
}
