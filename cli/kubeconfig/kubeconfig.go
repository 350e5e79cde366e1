// Package kubeconfig takes a tenant's kubeconfig out of its admin kubeconfig Secret and writes
// it where the user wants it: as it is, or merged into the user's own kubeconfig as a new
// context (with a cluster and a user of the same name, so tenants never collide on the
// "kubernetes-admin" user every admin.conf carries).
package kubeconfig

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	corekubeconfig "github.com/openhcp/kamaji/core/kubeconfig"
)

// Variant chooses one of the four kubeconfigs of the admin Secret.
type Variant struct {
	// SuperAdmin: super-admin.conf (system:masters, bypasses RBAC) instead of admin.conf
	// (kubeadm:cluster-admins, bound to cluster-admin, revocable).
	SuperAdmin bool
	// InCluster: the .svc variant, which dials the tenant Service from inside the admin
	// cluster, instead of the public endpoint.
	InCluster bool
}

// Key is the Secret key of the variant.
func (v Variant) Key() string {
	switch {
	case v.SuperAdmin && v.InCluster:
		return corekubeconfig.KeySuperAdminSvc
	case v.SuperAdmin:
		return corekubeconfig.KeySuperAdmin
	case v.InCluster:
		return corekubeconfig.KeyAdminSvc
	}
	return corekubeconfig.KeyAdmin
}

// SecretName is the admin kubeconfig Secret of the TCP: the one its status names, else the
// name the core gives it.
func SecretName(tcp *kamajiv1alpha1.TenantControlPlane) string {
	if n := tcp.Status.KubeConfig.Admin.SecretName; n != "" {
		return n
	}
	return corekubeconfig.AdminSecretName(tcp.Name)
}

// FromSecret returns the kubeconfig under key, checked to be a usable kubeconfig.
func FromSecret(s *corev1.Secret, key string) ([]byte, error) {
	data, ok := s.Data[key]
	if !ok || len(data) == 0 {
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("Secret %s/%s has no %q (it holds: %s)", s.Namespace, s.Name, key, strings.Join(keys, ", "))
	}
	if _, _, err := current(data); err != nil {
		return nil, fmt.Errorf("Secret %s/%s, key %q: %w", s.Namespace, s.Name, key, err)
	}
	return data, nil
}

// current returns the cluster and user of the kubeconfig's current context.
func current(data []byte) (*clientcmdapi.Cluster, *clientcmdapi.AuthInfo, error) {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return nil, nil, fmt.Errorf("not a kubeconfig: %w", err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil {
		return nil, nil, fmt.Errorf("the kubeconfig has no current context")
	}
	cluster, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if cluster == nil || user == nil {
		return nil, nil, fmt.Errorf("the kubeconfig's current context %q names a missing cluster or user", cfg.CurrentContext)
	}
	return cluster, user, nil
}

// Server is the URL the kubeconfig dials.
func Server(data []byte) (string, error) {
	c, _, err := current(data)
	if err != nil {
		return "", err
	}
	return c.Server, nil
}

// CA is the certificate authority data of the kubeconfig's cluster: the tenant CA.
func CA(data []byte) ([]byte, error) {
	c, _, err := current(data)
	if err != nil {
		return nil, err
	}
	if len(c.CertificateAuthorityData) == 0 {
		return nil, fmt.Errorf("the kubeconfig embeds no certificate authority")
	}
	return c.CertificateAuthorityData, nil
}

// Rename returns the kubeconfig with its cluster, user and context all named name, the
// current context set to it: a file that merges cleanly with others (KUBECONFIG=a:b).
func Rename(data []byte, name string) ([]byte, error) {
	cluster, user, err := current(data)
	if err != nil {
		return nil, err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = cluster
	cfg.AuthInfos[name] = user
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}

// ErrExists is returned by Merge when a context, cluster or user of that name exists.
type ErrExists struct {
	Kind, Name string
}

func (e *ErrExists) Error() string {
	return fmt.Sprintf("your kubeconfig already has a %s named %q: choose another --context-name, or pass --overwrite to replace it", e.Kind, e.Name)
}

// Merge adds the tenant's kubeconfig to into as a context named name, with a cluster and a
// user of the same name. Existing entries of that name are replaced only with overwrite.
// With use, the new context becomes the current one.
func Merge(into *clientcmdapi.Config, data []byte, name string, overwrite, use bool) error {
	if name == "" {
		return fmt.Errorf("empty context name")
	}
	cluster, user, err := current(data)
	if err != nil {
		return err
	}
	if !overwrite {
		if _, ok := into.Contexts[name]; ok {
			return &ErrExists{"context", name}
		}
		if _, ok := into.Clusters[name]; ok {
			return &ErrExists{"cluster", name}
		}
		if _, ok := into.AuthInfos[name]; ok {
			return &ErrExists{"user", name}
		}
	}
	if into.Clusters == nil {
		into.Clusters = map[string]*clientcmdapi.Cluster{}
	}
	if into.AuthInfos == nil {
		into.AuthInfos = map[string]*clientcmdapi.AuthInfo{}
	}
	if into.Contexts == nil {
		into.Contexts = map[string]*clientcmdapi.Context{}
	}
	into.Clusters[name] = cluster
	into.AuthInfos[name] = user
	into.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	if use {
		into.CurrentContext = name
	}
	return nil
}

// MergeInto merges the tenant's kubeconfig into the user's kubeconfig files as kubectl config
// set-context would: through the same ConfigAccess (--kubeconfig, else $KUBECONFIG, else
// ~/.kube/config), the new entries written to its default file. It returns that file.
func MergeInto(access clientcmd.ConfigAccess, data []byte, name string, overwrite, use bool) (string, error) {
	cfg, err := access.GetStartingConfig()
	if err != nil {
		return "", fmt.Errorf("reading your kubeconfig: %w", err)
	}
	if err := Merge(cfg, data, name, overwrite, use); err != nil {
		return "", err
	}
	if err := clientcmd.ModifyConfig(access, *cfg, true); err != nil {
		return "", fmt.Errorf("writing your kubeconfig: %w", err)
	}
	return access.GetDefaultFilename(), nil
}
