package controlplane

import (
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// Input is everything Build needs. The caller resolves the DataStore, the Secrets and the
// addons beforehand, which keeps Build free of clients and clocks.
type Input struct {
	// TCP is the TenantControlPlane; Build reads its spec and never modifies it.
	TCP *kamajiv1alpha1.TenantControlPlane
	// Replicas, when set, replaces spec.controlPlane.deployment.replicas (0 for a TCP put to
	// sleep).
	Replicas *int32

	// Storage: exactly one of Etcd or Kine.
	Etcd *EtcdStorage
	Kine *KineStorage
	// EtcdServersOverrides are "group/resource#https://a;https://b" entries for
	// kube-apiserver's --etcd-servers-overrides. They need Etcd storage: kube-apiserver reaches
	// them with Etcd's CA and client certificate, its only etcd TLS configuration.
	EtcdServersOverrides []string

	// Secrets names the Secrets holding the PKI and kubeconfigs, with the Key* constants as keys.
	Secrets Secrets
	// CATrustBundle says the CA Secret holds KeyCABundle (a CA rotation's overlap): the
	// components trust it, rather than the CA alone, for client certificates (--client-ca-file)
	// and publish it to pods (--root-ca-file).
	CATrustBundle bool
	// SecretsChecksum is a hash of every referenced Secret's data; it goes into the pod-template
	// annotation SecretsChecksumAnnotation so a changed certificate rolls the pods.
	SecretsChecksum string

	// Additions come from addon plugins (such as konnectivity).
	Additions PodAdditions

	// Labels are the selector labels (kamaji.clastix.io/name=<tcp>, app.kubernetes.io/managed-by=kamaji, ...).
	// They select the pods, so they win over user labels on conflict.
	Labels map[string]string
}

// EtcdStorage is an etcd datastore reached directly by kube-apiserver.
type EtcdStorage struct {
	// Servers are https URLs, in the order kube-apiserver should try them.
	Servers []string
	// Prefix isolates the tenant's keys (--etcd-prefix); required because the etcd is shared.
	Prefix string
	// CertSecret holds KeyDataStoreCACert, KeyDataStoreClientCert and KeyDataStoreClientKey.
	CertSecret string
}

// KineStorage is a SQL or NATS datastore reached through a kine sidecar speaking etcd.
type KineStorage struct {
	Image string
	// Args are kine's flags; spec.controlPlane.deployment.extraArgs.kine override them by name.
	Args []string
	// Env may hold SecretKeyRefs to a Secret the core writes (credentials).
	Env []corev1.EnvVar
	// FilesSecret, when set, is mounted read-only at FilesPath (DefaultKineFilesPath when empty)
	// in the kine container; Files maps its keys to relative paths (all keys when empty).
	FilesSecret string
	FilesPath   string
	Files       []corev1.KeyToPath
	// Endpoint is what kube-apiserver uses as --etcd-servers (DefaultKineEndpoint when empty).
	Endpoint string
}

// Secrets are the names of the Secrets Build mounts; see the Key* constants for their keys.
type Secrets struct {
	CA                          string
	APIServer                   string
	APIServerKubeletClient      string
	FrontProxyCA                string
	FrontProxyClient            string
	ServiceAccount              string
	ControllerManagerKubeconfig string
	SchedulerKubeconfig         string
}

// PodAdditions are what addon plugins add to the control-plane pod. Container ports travel
// inside Containers; Service ports are the Service builder's concern.
type PodAdditions struct {
	// Containers are appended after the core's, sorted by name (addons are unordered).
	Containers []corev1.Container
	// Volumes are appended after the core's, sorted by name.
	Volumes []corev1.Volume
	// APIServerArgs are "--flag=value"; they override the core's flags and are overridden by
	// the user's extraArgs.apiServer.
	APIServerArgs []string
	// APIServerVolumeMounts are added to kube-apiserver (such as konnectivity's egress
	// selector configuration and socket).
	APIServerVolumeMounts []corev1.VolumeMount
}

// validate reports every problem at once, so a caller fixes its Input in one go.
func (in Input) validate() error {
	if in.TCP == nil {
		return errors.New("controlplane: Input.TCP is required")
	}
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if in.TCP.Name == "" || in.TCP.Namespace == "" {
		add("TenantControlPlane name and namespace are required")
	}
	if in.TCP.Spec.Kubernetes.Version == "" {
		add("spec.kubernetes.version is required")
	}
	if _, err := Profile(in.TCP); err != nil {
		errs = append(errs, err)
	}
	if len(in.Labels) == 0 {
		// An empty selector would select every pod of the namespace.
		add("Input.Labels is required: it is the Deployment selector")
	}

	switch {
	case in.Etcd != nil && in.Kine != nil:
		add("exactly one of Input.Etcd and Input.Kine must be set, not both")
	case in.Etcd == nil && in.Kine == nil:
		add("exactly one of Input.Etcd and Input.Kine must be set")
	case in.Etcd != nil:
		if len(in.Etcd.Servers) == 0 {
			add("Input.Etcd.Servers is required")
		}
		if in.Etcd.Prefix == "" {
			add("Input.Etcd.Prefix is required: without it the tenant would share /registry with others")
		}
		if in.Etcd.CertSecret == "" {
			add("Input.Etcd.CertSecret is required")
		}
	case in.Kine != nil:
		if in.Kine.Image == "" {
			add("Input.Kine.Image is required")
		}
		if len(in.Kine.Files) > 0 && in.Kine.FilesSecret == "" {
			add("Input.Kine.Files needs Input.Kine.FilesSecret")
		}
	}
	if len(in.EtcdServersOverrides) > 0 && in.Etcd == nil {
		// kube-apiserver has a single etcd TLS configuration (--etcd-cafile/certfile/keyfile),
		// shared by the overrides: without etcd storage there is no client certificate for them.
		add("Input.EtcdServersOverrides need Input.Etcd: the overrides use its client certificate")
	}
	for _, o := range in.EtcdServersOverrides {
		res, servers, ok := strings.Cut(o, "#")
		if !ok || res == "" || servers == "" {
			add("Input.EtcdServersOverrides entry %q is not group/resource#servers", o)
		}
	}

	s := in.Secrets
	for _, f := range []struct{ name, value string }{
		{"CA", s.CA},
		{"APIServer", s.APIServer},
		{"APIServerKubeletClient", s.APIServerKubeletClient},
		{"FrontProxyCA", s.FrontProxyCA},
		{"FrontProxyClient", s.FrontProxyClient},
		{"ServiceAccount", s.ServiceAccount},
		{"ControllerManagerKubeconfig", s.ControllerManagerKubeconfig},
		{"SchedulerKubeconfig", s.SchedulerKubeconfig},
	} {
		if f.value == "" {
			add("Input.Secrets.%s is required", f.name)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("controlplane: invalid input: %w", err)
	}
	return nil
}
