package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/kubeconfig"
)

// SampleTCP is the TenantControlPlane `up` creates: one replica behind a ClusterIP Service, on
// the DataStore "default". Its pod range is not the admin cluster's (10.244.0.0/16): a worker
// node routes its pods' range locally, and must reach the tenant apiserver's pod address. The startup probe is tightened (first probe at once, every second,
// the same four-minute budget as the default): kube-apiserver is ready in about a second here,
// and the default ten-second initial delay would dominate the time to Ready.
//
// With $KAMAJI_LOCAL_PROFILE set (ProfileEnv), the sample TCPs carry that control-plane profile
// (kamaji.clastix.io/control-plane-profile): `kamaji local up`, the end-to-end suite and the
// bench then run every tenant they make under it.
func SampleTCP(name, namespace string) *kamajiv1alpha1.TenantControlPlane {
	var annotations map[string]string
	if profile := os.Getenv(ProfileEnv); profile != "" {
		annotations = map[string]string{kamajiv1alpha1.ControlPlaneProfileAnnotation: profile}
	}
	return &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: annotations},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			DataStore: "default",
			ControlPlane: kamajiv1alpha1.ControlPlane{
				Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"},
				Deployment: kamajiv1alpha1.DeploymentSpec{
					Replicas: ptr.To[int32](1),
					Probes: &kamajiv1alpha1.ControlPlaneProbes{
						StartupProbe: &kamajiv1alpha1.ProbeSpec{InitialDelaySeconds: ptr.To[int32](0), PeriodSeconds: ptr.To[int32](1), FailureThreshold: ptr.To[int32](240)},
					},
				},
			},
			NetworkProfile: kamajiv1alpha1.NetworkProfileSpec{PodCIDR: TenantPodCIDR},
			Kubernetes:     kamajiv1alpha1.KubernetesSpec{Version: KubeVersion},
		},
	}
}

// ProfileEnv names the environment variable holding the sample TCPs' control-plane profile.
const ProfileEnv = "KAMAJI_LOCAL_PROFILE"

// TenantPodCIDR is the sample tenants' pod range.
const TenantPodCIDR = "10.36.0.0/16"

// stageTenant creates the sample TCP if missing, waits until it is Ready, writes its
// kubeconfig and checks that the printed kubectl line works.
func (p *Plane) stageTenant(ctx context.Context, name string) (string, error) {
	tcp := SampleTCP(name, "default")
	if name == TenantName(0) && p.cfg.Workers > 0 {
		// Its workers run the addons: cluster DNS and Services inside the tenant, and the
		// konnectivity agent through which the apiserver reaches the kubelets.
		tcp.Spec.Addons = kamajiv1alpha1.AddonsSpec{CoreDNS: &kamajiv1alpha1.AddonSpec{}, KubeProxy: &kamajiv1alpha1.AddonSpec{},
			Konnectivity: &kamajiv1alpha1.KonnectivitySpec{}}
	}
	err := p.cl.Create(ctx, tcp)
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("creating TenantControlPlane %s: %w", name, err)
	}
	if err := p.WaitTCPReady(ctx, "default", name, 3*time.Minute); err != nil {
		return "", err
	}
	if err := p.WriteTenantKubeconfig(ctx, "default", name, p.cfg.TenantKubeconfig(name)); err != nil {
		return "", err
	}
	// kube-proxy programs the Service within a second or so; the line must work when printed.
	var out []byte
	err = pollReady(ctx, 60*time.Second, nil, func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, p.cfg.Kubectl(), "--kubeconfig", p.cfg.TenantKubeconfig(name), "get", "ns", "--request-timeout=5s")
		var err error
		out, err = cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("kubectl get ns against %s: %w", name, err)
	}
	got := &kamajiv1alpha1.TenantControlPlane{}
	_ = p.cl.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, got)
	return fmt.Sprintf("Ready, endpoint %s, kubeconfig %s", got.Status.ControlPlaneEndpoint, p.cfg.TenantKubeconfig(name)), nil
}

// WaitTCPReady waits until the TCP reports Ready; on timeout the error names the tenant's
// pods and their states, with the log of the first container that is not ready.
func (p *Plane) WaitTCPReady(ctx context.Context, namespace, name string, timeout time.Duration) error {
	err := pollReady(ctx, timeout, nil, func(ctx context.Context) error {
		tcp := &kamajiv1alpha1.TenantControlPlane{}
		if err := p.cl.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, tcp); err != nil {
			return err
		}
		if s := tcp.Status.Kubernetes.Version.Status; s != nil && *s == kamajiv1alpha1.VersionReady {
			return nil
		}
		var conds []string
		for _, c := range tcp.Status.Conditions {
			if c.Status != metav1.ConditionTrue {
				conds = append(conds, fmt.Sprintf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message))
			}
		}
		return fmt.Errorf("status %v; %s", ptr.Deref(tcp.Status.Kubernetes.Version.Status, ""), strings.Join(conds, "; "))
	})
	if err == nil {
		return nil
	}
	return p.tenantDiagnosis(ctx, namespace, name, err)
}

func (p *Plane) tenantDiagnosis(ctx context.Context, namespace, name string, cause error) error {
	pods, _ := p.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "kamaji.clastix.io/name=" + name})
	var lines []string
	logPath := ""
	if pods != nil {
		for _, pod := range pods.Items {
			lines = append(lines, fmt.Sprintf("pod %s: %s", pod.Name, pod.Status.Phase))
			for _, c := range pod.Status.Conditions {
				if c.Status != corev1.ConditionTrue && c.Message != "" {
					lines = append(lines, fmt.Sprintf("  condition %s: %s", c.Type, c.Message))
				}
			}
			for _, cs := range pod.Status.ContainerStatuses {
				state := "running"
				switch {
				case cs.State.Waiting != nil:
					state = "waiting: " + cs.State.Waiting.Reason + " " + cs.State.Waiting.Message
				case cs.State.Terminated != nil:
					state = fmt.Sprintf("terminated: exit %d", cs.State.Terminated.ExitCode)
				}
				lines = append(lines, fmt.Sprintf("  container %s ready=%v restarts=%d %s", cs.Name, cs.Ready, cs.RestartCount, state))
				if !cs.Ready && logPath == "" {
					logPath = p.containerLog(&pod, cs.Name)
				}
			}
		}
	}
	if len(lines) == 0 {
		lines = append(lines, "no pod exists for it (see the manager's log, and the kube-controller-manager's)")
		logPath = p.managerLog(ctx)
	}
	return &StageError{Component: "TenantControlPlane " + name, Log: logPath, Err: fmt.Errorf("%v\n%s", cause, strings.Join(lines, "\n"))}
}

// containerLog is where the process node writes a container's output.
func (p *Plane) containerLog(pod *corev1.Pod, container string) string {
	return ContainerLogPath(p.cfg.StateDir, pod, container)
}

// ContainerLogPath is the log file the process node of the plane in stateDir writes a
// container's output to, as it runs.
func ContainerLogPath(stateDir string, pod *corev1.Pod, container string) string {
	return filepath.Join(stateDir, "pods", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID), "logs", container+".log")
}

// WriteTenantKubeconfig writes the tenant's super-admin kubeconfig (system:masters): the
// admin.conf user is bound by the kubeadm:cluster-admins ClusterRoleBinding, which only the
// tenant-side kubeadm phases create.
func (p *Plane) WriteTenantKubeconfig(ctx context.Context, namespace, name, path string) error {
	s, err := p.cs.CoreV1().Secrets(namespace).Get(ctx, kubeconfig.AdminSecretName(name), metav1.GetOptions{})
	if err != nil {
		return err
	}
	data := s.Data["super-admin.conf"]
	if len(data) == 0 {
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return fmt.Errorf("secret %s has no super-admin.conf (keys: %v)", s.Name, keys)
	}
	return os.WriteFile(path, data, 0o600)
}
