package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// volumeFile is one file a volume holds.
type volumeFile struct {
	path string
	data []byte
	mode os.FileMode
}

// materializeVolumes writes every volume of the pod under dir/<volume> and returns the folder
// of each. Secret, ConfigMap, projected (service-account tokens included) and downward-API
// volumes are written once, at pod start; emptyDir is a folder; hostPath is the host's path; an
// image volume is a folder with the image's binaries folder at their path in the image.
func (n *Node) materializeVolumes(ctx context.Context, pod *corev1.Pod, dir string) (map[string]string, error) {
	// Side by side: a tenant's pod has a dozen Secret volumes, each a request to the API server,
	// and they stand between the pod's sandbox and its containers' start.
	vols := pod.Spec.Volumes
	found := make([]string, len(vols))
	errs := make([]error, len(vols))
	var wg sync.WaitGroup
	sem := make(chan struct{}, volumeWorkers)
	for i := range vols {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			found[i], errs[i] = n.materializeVolume(ctx, pod, &vols[i], filepath.Join(dir, vols[i].Name))
		}()
	}
	wg.Wait()
	paths := make(map[string]string, len(vols))
	for i, v := range vols {
		if errs[i] != nil { // the first volume in the pod's order, as when they were written in turn
			return nil, errs[i]
		}
		paths[v.Name] = found[i]
	}
	return paths, nil
}

// volumeWorkers bounds the volumes of one pod written at once.
const volumeWorkers = 8

// materializeVolume writes one volume under vdir (or finds its host path) and returns its folder.
func (n *Node) materializeVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, vdir string) (string, error) {
	var files []volumeFile
	var err error
	switch {
	case v.EmptyDir != nil:
		return vdir, os.MkdirAll(vdir, 0o777)
	case v.HostPath != nil:
		if v.HostPath.Type != nil && (*v.HostPath.Type == corev1.HostPathDirectoryOrCreate) {
			if err := os.MkdirAll(v.HostPath.Path, 0o755); err != nil {
				return "", err
			}
		}
		return v.HostPath.Path, nil
	case v.Image != nil:
		p, err := n.imageVolume(v.Image.Reference, vdir)
		if err != nil {
			return "", fmt.Errorf("volume %q: %w", v.Name, err)
		}
		return p, nil
	case v.Secret != nil:
		files, err = n.secretFiles(ctx, pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.DefaultMode, ptr.Deref(v.Secret.Optional, false))
	case v.ConfigMap != nil:
		files, err = n.configMapFiles(ctx, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.DefaultMode, ptr.Deref(v.ConfigMap.Optional, false))
	case v.DownwardAPI != nil:
		files, err = n.downwardFiles(pod, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode)
	case v.Projected != nil:
		files, err = n.projectedFiles(ctx, pod, v.Projected)
	default:
		return "", fmt.Errorf("volume %q: this volume type is not supported on the local node (supported: secret, configMap, emptyDir, projected, downwardAPI, hostPath, image)", v.Name)
	}
	if err != nil {
		return "", fmt.Errorf("volume %q: %w", v.Name, err)
	}
	if err := writeVolume(vdir, files); err != nil {
		return "", fmt.Errorf("volume %q: %w", v.Name, err)
	}
	return vdir, nil
}

// imageVolume makes dir look like the image's filesystem: its binaries path (usr/local/bin) is a
// link to the image's local folder, so a subPath of that path mounts the folder itself. The
// binaries are not copied: they are the ones make build or the cache holds.
func (n *Node) imageVolume(ref, dir string) (string, error) {
	images, err := n.images()
	if err != nil {
		return "", err
	}
	img, err := images.Resolve(ref)
	if err != nil {
		return "", err
	}
	rel := strings.TrimPrefix(filepath.Clean("/"+img.ImageDir), "/")
	if rel == "" {
		return img.Dir, nil
	}
	link := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return "", err
	}
	// Replaced atomically: the volume is made again when the pod's volumes are retried.
	tmp := link + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(img.Dir, tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, link); err != nil {
		return "", err
	}
	return dir, nil
}

func writeVolume(dir string, files []volumeFile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		clean := filepath.Clean("/" + f.path)
		p := filepath.Join(dir, clean)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p+".tmp", f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p+".tmp", f.mode); err != nil {
			return err
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			return err
		}
	}
	return nil
}

func fileMode(item *int32, def *int32, fallback int32) os.FileMode {
	switch {
	case item != nil:
		return os.FileMode(*item)
	case def != nil:
		return os.FileMode(*def)
	}
	return os.FileMode(fallback)
}

// keyFiles projects a key/value map through items (all keys when items is empty).
func keyFiles(kind, name string, data map[string][]byte, items []corev1.KeyToPath, defMode *int32, optional bool) ([]volumeFile, error) {
	var files []volumeFile
	if len(items) == 0 {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			files = append(files, volumeFile{path: k, data: data[k], mode: fileMode(nil, defMode, 0o644)})
		}
		return files, nil
	}
	for _, it := range items {
		d, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%s %q has no key %q", kind, name, it.Key)
		}
		files = append(files, volumeFile{path: it.Path, data: d, mode: fileMode(it.Mode, defMode, 0o644)})
	}
	return files, nil
}

func (n *Node) secretFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, mode *int32, optional bool) ([]volumeFile, error) {
	s, err := n.cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, err)
	}
	return keyFiles("secret", name, s.Data, items, mode, optional)
}

func (n *Node) configMapFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, mode *int32, optional bool) ([]volumeFile, error) {
	cm, err := n.cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("configmap %q: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles("configmap", name, data, items, mode, optional)
}

func (n *Node) downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, mode *int32) ([]volumeFile, error) {
	var files []volumeFile
	for _, it := range items {
		var val string
		var err error
		switch {
		case it.FieldRef != nil:
			val, err = n.fieldValue(pod, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			val, err = n.resourceValue(pod, it.ResourceFieldRef)
		}
		if err != nil {
			return nil, err
		}
		files = append(files, volumeFile{path: it.Path, data: []byte(val), mode: fileMode(it.Mode, mode, 0o644)})
	}
	return files, nil
}

func (n *Node) projectedFiles(ctx context.Context, pod *corev1.Pod, p *corev1.ProjectedVolumeSource) ([]volumeFile, error) {
	var all []volumeFile
	for _, src := range p.Sources {
		var files []volumeFile
		var err error
		switch {
		case src.Secret != nil:
			files, err = n.secretFiles(ctx, pod.Namespace, src.Secret.Name, src.Secret.Items, p.DefaultMode, ptr.Deref(src.Secret.Optional, false))
		case src.ConfigMap != nil:
			files, err = n.configMapFiles(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, p.DefaultMode, ptr.Deref(src.ConfigMap.Optional, false))
		case src.DownwardAPI != nil:
			files, err = n.downwardFiles(pod, src.DownwardAPI.Items, p.DefaultMode)
		case src.ServiceAccountToken != nil:
			files, err = n.tokenFile(ctx, pod, src.ServiceAccountToken, p.DefaultMode)
		default:
			err = fmt.Errorf("projected source %+v is not supported on the local node", src)
		}
		if err != nil {
			return nil, err
		}
		all = append(all, files...)
	}
	return all, nil
}

// tokenFile asks the API server for a token bound to the pod, as the kubelet does.
func (n *Node) tokenFile(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection, mode *int32) ([]volumeFile, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: src.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	tr, err := n.cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token for service account %q: %w", sa, err)
	}
	return []volumeFile{{path: src.Path, data: []byte(tr.Status.Token), mode: fileMode(nil, mode, 0o644)}}, nil
}

// fieldValue answers a downward-API field path.
func (n *Node) fieldValue(pod *corev1.Pod, path string) (string, error) {
	if k, ok := bracketKey(path, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := bracketKey(path, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return n.cfg.Gateway.String(), nil
	case "status.podIP", "status.podIPs":
		return pod.Status.PodIP, nil
	}
	return "", fmt.Errorf("field path %q is not supported", path)
}

func bracketKey(path, prefix string) (string, bool) {
	if !strings.HasPrefix(path, prefix+"['") || !strings.HasSuffix(path, "']") {
		return "", false
	}
	return strings.TrimSuffix(strings.TrimPrefix(path, prefix+"['"), "']"), true
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return b.String()
}

// resourceValue answers limits/requests; an unset limit is the node's capacity, as the kubelet says.
func (n *Node) resourceValue(pod *corev1.Pod, ref *corev1.ResourceFieldSelector) (string, error) {
	var c *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == ref.ContainerName || ref.ContainerName == "" {
			c = &pod.Spec.Containers[i]
			break
		}
	}
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef: no container %q", ref.ContainerName)
	}
	kind, res, _ := strings.Cut(ref.Resource, ".")
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(res)]
	if !ok {
		q, ok = n.capacity()[corev1.ResourceName(res)]
	}
	if !ok {
		return "0", nil
	}
	div := int64(1)
	if ref.Divisor.Value() > 0 {
		div = ref.Divisor.MilliValue()
		return strconv.FormatInt((q.MilliValue()+div-1)/div, 10), nil
	}
	if res == "cpu" {
		return strconv.FormatInt((q.MilliValue()+999)/1000, 10), nil
	}
	return strconv.FormatInt(q.Value()/div, 10), nil
}
