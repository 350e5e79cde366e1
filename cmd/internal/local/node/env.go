package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// containerEnv builds a container's environment as the kubelet does: envFrom first, then env
// in order, each value expanding $(VAR) references to variables defined before it.
func (n *Node) containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, img Resolved) ([]string, map[string]string, error) {
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	set("PATH", img.Dir+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	set("HOME", "/root")
	set("HOSTNAME", podHostname(pod))
	if n.cfg.APIServiceHost != "" {
		set("KUBERNETES_SERVICE_HOST", n.cfg.APIServiceHost)
		set("KUBERNETES_SERVICE_PORT", n.cfg.APIServicePort)
	}
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := n.cs.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) && ptr.Deref(from.ConfigMapRef.Optional, false) {
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("envFrom configmap %q: %w", from.ConfigMapRef.Name, err)
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := n.cs.CoreV1().Secrets(pod.Namespace).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) && ptr.Deref(from.SecretRef.Optional, false) {
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("envFrom secret %q: %w", from.SecretRef.Name, err)
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		for k, v := range data {
			set(from.Prefix+k, v)
		}
	}
	for _, e := range c.Env {
		var val string
		switch {
		case e.ValueFrom == nil:
			val = Expand(e.Value, vars)
		case e.ValueFrom.FieldRef != nil:
			v, err := n.fieldValue(pod, e.ValueFrom.FieldRef.FieldPath)
			if err != nil {
				return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			val = v
		case e.ValueFrom.ResourceFieldRef != nil:
			ref := *e.ValueFrom.ResourceFieldRef
			if ref.ContainerName == "" {
				ref.ContainerName = c.Name
			}
			v, err := n.resourceValue(pod, &ref)
			if err != nil {
				return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			val = v
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, err := n.cs.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil || s.Data[ref.Key] == nil {
				if ptr.Deref(ref.Optional, false) {
					continue
				}
				return nil, nil, fmt.Errorf("env %s: secret %q key %q: %v", e.Name, ref.Name, ref.Key, orMissing(err))
			}
			val = string(s.Data[ref.Key])
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, err := n.cs.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			v, ok := "", false
			if err == nil {
				v, ok = cm.Data[ref.Key]
			}
			if !ok {
				if ptr.Deref(ref.Optional, false) {
					continue
				}
				return nil, nil, fmt.Errorf("env %s: configmap %q key %q: %v", e.Name, ref.Name, ref.Key, orMissing(err))
			}
			val = v
		}
		set(e.Name, val)
	}
	set(MarkerEnv, n.cfg.StateDir)
	set(ContainerEnv, string(pod.UID))
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vars[k])
	}
	return env, vars, nil
}

func orMissing(err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("not found")
}

// commandLine is the argv of a container: command (or the image entrypoint) and args, with
// $(VAR) expanded from the container's environment. An absolute command under one of the
// container's mounts (a binary an init container put in an emptyDir) runs from that volume;
// any other is looked up by name in the image's folder.
func commandLine(c *corev1.Container, img Resolved, vars map[string]string, mounts []Mount) (string, []string, error) {
	var argv []string
	for _, a := range c.Command {
		argv = append(argv, Expand(a, vars))
	}
	if len(argv) == 0 {
		if img.Entrypoint == "" {
			return "", nil, fmt.Errorf("container %q has no command and its image no entrypoint", c.Name)
		}
		argv = []string{img.Entrypoint}
	}
	for _, a := range c.Args {
		argv = append(argv, Expand(a, vars))
	}
	if path, ok, err := volumeCommand(argv[0], mounts); ok {
		return path, argv, err
	}
	path, err := img.Lookup(argv[0])
	if err != nil {
		return "", nil, err
	}
	argv[0] = filepath.Base(argv[0])
	return path, argv, nil
}

// volumeCommand resolves an absolute command that lies under a mount (the deepest one, as
// later mounts hide earlier ones). It stays the container path: the helper execs it after
// bind-mounting the volumes, where it is that volume's file. ok is false when no mount holds it.
func volumeCommand(command string, mounts []Mount) (path string, ok bool, err error) {
	if !filepath.IsAbs(command) {
		return "", false, nil
	}
	command = filepath.Clean(command)
	var best *Mount
	for i := range mounts {
		t := filepath.Clean(mounts[i].Target)
		if (command == t || strings.HasPrefix(command, strings.TrimSuffix(t, "/")+"/")) && (best == nil || len(t) >= len(filepath.Clean(best.Target))) {
			best = &mounts[i]
		}
	}
	if best == nil {
		return "", false, nil
	}
	host := filepath.Join(best.Source, strings.TrimPrefix(command, filepath.Clean(best.Target)))
	st, err := os.Stat(host)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", true, fmt.Errorf("command %q is not an executable in the volume mounted at %s", command, best.Target)
	}
	return command, true, nil
}

// Expand replaces $(VAR) with its value; $$(VAR) escapes to a literal $(VAR); an unknown
// reference is left as is, like the kubelet does.
func Expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func podHostname(pod *corev1.Pod) string {
	h := pod.Name
	if pod.Spec.Hostname != "" {
		h = pod.Spec.Hostname
	}
	if len(h) > 63 {
		h = h[:63]
	}
	return h
}
