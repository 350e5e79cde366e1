// Package datastores turns a DataStore object into the configuration a datastore plugin
// receives: Secret references are resolved here, in the core, so plugins never need access to
// the admin cluster.
package datastores

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// MissingSecretError names the Secret (and key) a DataStore refers to that cannot be read.
type MissingSecretError struct {
	Field, Namespace, Name, Key string
	Err                         error
}

func (e *MissingSecretError) Error() string {
	return fmt.Sprintf("%s: Secret %s/%s key %q: %v", e.Field, e.Namespace, e.Name, e.Key, e.Err)
}

func (e *MissingSecretError) Unwrap() error { return e.Err }

// Resolve reads every value of the DataStore, inline or from its Secret, into a plugin Config.
// Secrets are read with r, which should be an uncached reader: the admin cluster's Secrets are
// not cached by the core.
func Resolve(ctx context.Context, r client.Reader, ds *kamajiv1alpha1.DataStore) (datastore.Config, error) {
	cfg := datastore.Config{Name: ds.Name, Driver: ds.Spec.Driver, Endpoints: ds.Spec.Endpoints, Parameters: maps.Clone(ds.Spec.Parameters)}
	read := func(field string, ref *kamajiv1alpha1.ContentRef) ([]byte, error) {
		if ref == nil {
			return nil, nil
		}
		if len(ref.Content) > 0 {
			return ref.Content, nil
		}
		s := ref.SecretRef
		if s == nil {
			return nil, nil
		}
		secret := &corev1.Secret{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, secret); err != nil {
			return nil, &MissingSecretError{Field: field, Namespace: s.Namespace, Name: s.Name, Key: s.KeyPath, Err: err}
		}
		v, ok := secret.Data[s.KeyPath]
		if !ok {
			return nil, &MissingSecretError{Field: field, Namespace: s.Namespace, Name: s.Name, Key: s.KeyPath, Err: ErrNoSuchKey}
		}
		return v, nil
	}
	var err error
	if tls := ds.Spec.TLSConfig; tls != nil {
		if cfg.CACert, err = read("spec.tlsConfig.certificateAuthority.certificate", &tls.CertificateAuthority.Certificate); err != nil {
			return cfg, err
		}
		if cfg.CAKey, err = read("spec.tlsConfig.certificateAuthority.privateKey", tls.CertificateAuthority.PrivateKey); err != nil {
			return cfg, err
		}
		if cc := tls.ClientCertificate; cc != nil {
			if cfg.ClientCert, err = read("spec.tlsConfig.clientCertificate.certificate", &cc.Certificate); err != nil {
				return cfg, err
			}
			if cfg.ClientKey, err = read("spec.tlsConfig.clientCertificate.privateKey", &cc.PrivateKey); err != nil {
				return cfg, err
			}
		}
	}
	if ba := ds.Spec.BasicAuth; ba != nil {
		user, err := read("spec.basicAuth.username", &ba.Username)
		if err != nil {
			return cfg, err
		}
		pass, err := read("spec.basicAuth.password", &ba.Password)
		if err != nil {
			return cfg, err
		}
		cfg.Username, cfg.Password = string(user), string(pass)
	}
	return cfg, nil
}

// Cache keeps resolved configurations for a short while, so that hundreds of TCP reconciles on
// one DataStore cost one Secret read per TTL rather than one each, while a changed Secret is
// still picked up within the TTL.
type Cache struct {
	Reader client.Reader
	TTL    time.Duration
	Now    func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry
	// cas: the checksum of each DataStore's CA as last resolved (kept across Forget), and who
	// to tell when it changes.
	cas        map[string][32]byte
	onCAChange []func(dataStore string)
}

// OnCAChange registers f, called with a DataStore's name when a resolution gives it another CA
// (certificate or key) than the previous one: the client certificates signed with the old one
// are to be reissued. The DataStore controller resolves every DataStore again every 30 s, so a
// CA changed in a referenced Secret is seen too.
func (c *Cache) OnCAChange(f func(dataStore string)) {
	c.mu.Lock()
	c.onCAChange = append(c.onCAChange, f)
	c.mu.Unlock()
}

type cacheEntry struct {
	resourceVersion string
	cfg             datastore.Config
	at              time.Time
}

// Get returns the resolved configuration of ds.
func (c *Cache) Get(ctx context.Context, ds *kamajiv1alpha1.DataStore) (datastore.Config, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	c.mu.Lock()
	e, ok := c.entries[ds.Name]
	c.mu.Unlock()
	if ok && e.resourceVersion == ds.ResourceVersion && now().Sub(e.at) < c.TTL {
		return e.cfg, nil
	}
	cfg, err := Resolve(ctx, c.Reader, ds)
	if err != nil {
		return cfg, err
	}
	sum := sha256.Sum256(append(append([]byte{}, cfg.CACert...), cfg.CAKey...))
	c.mu.Lock()
	if c.entries == nil {
		c.entries, c.cas = map[string]cacheEntry{}, map[string][32]byte{}
	}
	c.entries[ds.Name] = cacheEntry{resourceVersion: ds.ResourceVersion, cfg: cfg, at: now()}
	prev, known := c.cas[ds.Name]
	c.cas[ds.Name] = sum
	var notify []func(string)
	if known && prev != sum {
		notify = slices.Clone(c.onCAChange)
	}
	c.mu.Unlock()
	for _, f := range notify {
		f(ds.Name)
	}
	return cfg, nil
}

// Forget drops a DataStore's entry (deleted, or its Secret changed).
func (c *Cache) Forget(name string) {
	c.mu.Lock()
	delete(c.entries, name)
	c.mu.Unlock()
}

// ErrNoSuchKey: the referenced Secret exists but lacks the key.
var ErrNoSuchKey = errors.New("no such key")

// IsMissingSecret reports whether err is a Secret (or a key of it) a DataStore refers to that is absent.
func IsMissingSecret(err error) bool {
	var m *MissingSecretError
	if !errors.As(err, &m) {
		return false
	}
	return apierrors.IsNotFound(m.Err) || errors.Is(m.Err, ErrNoSuchKey)
}
