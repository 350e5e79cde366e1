package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TenantAPIServer is a TenantControlPlane's kube-apiserver run as a local process with the
// flags and files of its Deployment: what a kubelet would run from the pod template, minus the
// kubelet. Its storage is the tenant's real datastore.
type TenantAPIServer struct {
	// URL is where it serves, https://127.0.0.1:<port>.
	URL string
	// Dir holds its files (under root/, at the paths the pod mounts them) and its log.
	Dir  string
	proc *process
}

// StartTenantAPIServer reads the control-plane Deployment namespace/name, writes the files
// its kube-apiserver container mounts (Secrets, ConfigMaps, emptyDirs) under a temporary
// folder, and starts kube-apiserver with the container's arguments pointed at them, listening on
// a free loopback port (--bind-address, --advertise-address and --secure-port are overridden;
// the endpoint reconciler is off, as loopback cannot be published). It returns once /readyz
// answers.
func StartTenantAPIServer(ctx context.Context, c client.Reader, namespace, name string) (_ *TenantAPIServer, err error) {
	bin, err := Binary("kube-apiserver")
	if err != nil {
		return nil, err
	}
	dep := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, dep); err != nil {
		return nil, err
	}
	pod := dep.Spec.Template.Spec
	var api *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "kube-apiserver" {
			api = &pod.Containers[i]
		}
	}
	if api == nil {
		return nil, fmt.Errorf("deployment %s/%s has no kube-apiserver container", namespace, name)
	}
	dir, err := os.MkdirTemp("", "kamaji-tenant-apiserver-")
	if err != nil {
		return nil, err
	}
	s := &TenantAPIServer{Dir: dir}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	root := filepath.Join(dir, "root")
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	var mountPaths []string
	for _, m := range api.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			return nil, fmt.Errorf("kube-apiserver mounts %q, which is not a volume of the pod", m.Name)
		}
		if err := materialize(ctx, c, namespace, v, m, filepath.Join(root, m.MountPath)); err != nil {
			return nil, fmt.Errorf("volume %s at %s: %w", m.Name, m.MountPath, err)
		}
		mountPaths = append(mountPaths, m.MountPath)
	}
	// Longest first, so a file mounted inside a mounted folder maps to itself.
	sort.Slice(mountPaths, func(i, j int) bool { return len(mountPaths[i]) > len(mountPaths[j]) })

	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	overrides := map[string]string{
		"--bind-address": "127.0.0.1", "--advertise-address": "127.0.0.1", "--secure-port": strconv.Itoa(port),
		"--endpoint-reconciler-type": "none", "--cert-dir": filepath.Join(dir, "certs"),
	}
	var args []string
	seen := map[string]bool{}
	var given []string
	if len(api.Command) > 1 {
		given = append(given, api.Command[1:]...)
	}
	for _, a := range append(given, api.Args...) {
		flag, value, hasValue := strings.Cut(a, "=")
		if o, ok := overrides[flag]; ok {
			if !seen[flag] {
				args = append(args, flag+"="+o)
			}
			seen[flag] = true
			continue
		}
		if hasValue {
			value = localPath(root, mountPaths, value)
			a = flag + "=" + value
		}
		args = append(args, a)
	}
	for flag, v := range overrides {
		if !seen[flag] {
			args = append(args, flag+"="+v)
		}
	}
	s.proc, err = startProcess("tenant kube-apiserver", filepath.Join(dir, "kube-apiserver.log"), bin, args...)
	if err != nil {
		return nil, err
	}
	s.URL = "https://127.0.0.1:" + strconv.Itoa(port)

	caFile := ""
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--client-ca-file="); ok {
			caFile = v
		}
	}
	pool := x509.NewCertPool()
	if b, err := os.ReadFile(caFile); err != nil || !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("the tenant CA (--client-ca-file %q) is unreadable: %v", caFile, err)
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}}
	if err := poll(ctx, s.proc, "the tenant kube-apiserver /readyz", func() bool { return httpOK(hc, s.URL+"/readyz") }); err != nil {
		return nil, err
	}
	return s, nil
}

// Log is the path of the process's log.
func (s *TenantAPIServer) Log() string { return filepath.Join(s.Dir, "kube-apiserver.log") }

// Stop terminates the process and removes its folder (kept with KAMAJI_KEEP_PLANE).
func (s *TenantAPIServer) Stop() {
	if s == nil {
		return
	}
	s.proc.stop()
	if os.Getenv("KAMAJI_KEEP_PLANE") == "" {
		_ = os.RemoveAll(s.Dir)
	}
}

func localPath(root string, mountPaths []string, value string) string {
	for _, mp := range mountPaths {
		if value == mp || strings.HasPrefix(value, mp+"/") {
			return filepath.Join(root, value)
		}
	}
	return value
}

// materialize writes what volume v shows at mount m into local (a file for a subPath mount,
// a folder otherwise).
func materialize(ctx context.Context, c client.Reader, namespace string, v corev1.Volume, m corev1.VolumeMount, local string) error {
	var data map[string][]byte
	var items []corev1.KeyToPath
	switch {
	case v.EmptyDir != nil:
		return os.MkdirAll(local, 0o755)
	case v.Secret != nil:
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: v.Secret.SecretName}, s); err != nil {
			return err
		}
		data, items = s.Data, v.Secret.Items
	case v.ConfigMap != nil:
		cm := &corev1.ConfigMap{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: v.ConfigMap.Name}, cm); err != nil {
			return err
		}
		data = map[string][]byte{}
		for k, s := range cm.Data {
			data[k] = []byte(s)
		}
		for k, b := range cm.BinaryData {
			data[k] = b
		}
		items = v.ConfigMap.Items
	default:
		return fmt.Errorf("unsupported volume source")
	}
	files := map[string][]byte{} // path in the volume → content
	if len(items) == 0 {
		for k, b := range data {
			files[k] = b
		}
	}
	for _, it := range items {
		b, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("key %q is missing", it.Key)
		}
		files[it.Path] = b
	}
	if m.SubPath != "" {
		b, ok := files[path.Clean(m.SubPath)]
		if !ok {
			return fmt.Errorf("subPath %q is not in the volume", m.SubPath)
		}
		return writeFile(local, b)
	}
	for p, b := range files {
		if err := writeFile(filepath.Join(local, p), b); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o600)
}
