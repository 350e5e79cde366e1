package local_test

// The worker node `up` joins to tenant-00: containerd, Debian's runc and the kubelet in a
// network and mount namespace of their own, joined with the real kubeadm join; images from the
// worker's own registry. What a tenant user does with a cluster: run pods, read their logs,
// exec into them, forward a port, reach a Service by its name (the tenant's kube-proxy and
// CoreDNS addons run on the node); the apiserver reaches the kubelet through the konnectivity
// addon's agent only.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/openhcp/kamaji/cmd/internal/local"
	"github.com/openhcp/kamaji/cmd/internal/local/node"
)

func init() {
	registerPlaneSubtest("a worker node joined with kubeadm runs the tenant's pods", testWorker)
}

func testWorker(t *testing.T, e *e2e) {
	const tenantName = "tenant-00"
	kubeconfig := filepath.Join(e.state, tenantName+".kubeconfig")
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tenant := kubernetes.NewForConfigOrDie(rc)
	kubectl := func(args ...string) (string, error) {
		out, err := exec.Command(e.kubectl, append([]string{"--kubeconfig", kubeconfig, "--request-timeout=30s"}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	nodeName := local.WorkerName(0)

	t.Run("the node joined through a bootstrap token's CSR and is Ready", func(t *testing.T) {
		n, err := tenant.CoreV1().Nodes().Get(ctx(t), nodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ready := false
		for _, c := range n.Status.Conditions {
			ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
		}
		ip := ""
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ip = a.Address
			}
		}
		info := n.Status.NodeInfo
		if !ready || ip != "10.246.0.2" || info.KubeletVersion != local.KubeVersion || info.ContainerRuntimeVersion != "containerd://"+strings.TrimPrefix(local.ContainerdVersion, "v") {
			t.Errorf("node %s: ready %v, InternalIP %s, kubelet %s, runtime %s", nodeName, ready, ip, info.KubeletVersion, info.ContainerRuntimeVersion)
		}
		if !strings.HasPrefix(n.Spec.PodCIDR, "10.36.") {
			t.Errorf("pod range %q, want one of the tenant's %s", n.Spec.PodCIDR, local.TenantPodCIDR)
		}
		csrs, err := tenant.CertificatesV1().CertificateSigningRequests().List(ctx(t), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, csr := range csrs.Items {
			if strings.HasPrefix(csr.Spec.Username, "system:bootstrap:") && csr.Spec.SignerName == certificatesv1.KubeAPIServerClientKubeletSignerName {
				for _, c := range csr.Status.Conditions {
					found = found || (c.Type == certificatesv1.CertificateApproved && c.Status == corev1.ConditionTrue)
				}
			}
		}
		if !found {
			t.Errorf("no approved kubelet client CSR made with a bootstrap token among %d CSRs", len(csrs.Items))
		}
	})

	t.Run("the tenant's kube-proxy, CoreDNS and konnectivity agent run on the node", func(t *testing.T) {
		eventually(t, "kube-proxy, coredns and konnectivity-agent pods Running and ready on "+nodeName, func() error {
			for _, sel := range []string{"k8s-app=kube-proxy", "k8s-app=kube-dns", "k8s-app=konnectivity-agent"} {
				pods, err := tenant.CoreV1().Pods("kube-system").List(ctx(t), metav1.ListOptions{LabelSelector: sel})
				if err != nil {
					return err
				}
				if len(pods.Items) == 0 {
					return fmt.Errorf("no pod with %s", sel)
				}
				for _, p := range pods.Items {
					ready := false
					for _, c := range p.Status.Conditions {
						ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
					}
					if p.Spec.NodeName != nodeName || p.Status.Phase != corev1.PodRunning || !ready {
						return fmt.Errorf("pod %s on %q: %s, ready %v; %s", p.Name, p.Spec.NodeName, p.Status.Phase, ready, containerStates(&p))
					}
				}
			}
			return nil
		})
	})

	t.Run("the tenant apiserver cannot reach the node but through konnectivity", func(t *testing.T) {
		// From the apiserver pod's own network namespace the node is unreachable (the host
		// says so at once); logs, exec and port-forward below go through the agent's tunnel.
		// An earlier subtest may have left tenant-00 rolling to a new pod: wait for the one.
		var pods []corev1.Pod
		eventually(t, "one ready apiserver pod of "+tenantName, func() error {
			pods = e.tenantPods(t, tenantName)
			if len(pods) != 1 || !podReady(&pods[0]) || pods[0].DeletionTimestamp != nil {
				return fmt.Errorf("pods %v", podSummary(pods))
			}
			return nil
		})
		netns, _ := node.SandboxNames(string(pods[0].UID))
		if c, err := dialIn(netns, net.JoinHostPort("10.246.0.2", "10250"), 5*time.Second); !errors.Is(err, syscall.EHOSTUNREACH) {
			if c != nil {
				c.Close()
			}
			t.Errorf("from the apiserver pod's namespace to the kubelet port: %v, want no route to host", err)
		}
	})

	t.Run("kubectl run busybox, then its logs", func(t *testing.T) {
		t.Cleanup(func() { _, _ = kubectl("delete", "pod", "probe", "--wait=false") })
		if out, err := kubectl("run", "probe", "--image=busybox", "--restart=Never", "--", "sh", "-c", "echo hello from $(hostname)"); err != nil {
			t.Fatalf("kubectl run: %v: %s", err, out)
		}
		eventually(t, "pod probe Succeeded", func() error {
			p, err := tenant.CoreV1().Pods("default").Get(ctx(t), "probe", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.Status.Phase != corev1.PodSucceeded {
				return fmt.Errorf("phase %s, %s", p.Status.Phase, containerStates(p))
			}
			return nil
		})
		if out, err := kubectl("logs", "probe"); err != nil || out != "hello from probe" {
			t.Errorf("kubectl logs probe: %v: %q", err, out)
		}
	})

	t.Run("a Deployment of two pods, exec and port-forward", func(t *testing.T) {
		t.Cleanup(func() { _, _ = kubectl("delete", "deployment", "web", "--wait=false") })
		// busybox's httpd serves its folder; the page says which pod answered.
		if out, err := kubectl("create", "deployment", "web", "--image=busybox", "--replicas=2", "--port=8080", "--",
			"sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"); err != nil {
			t.Fatalf("kubectl create deployment: %v: %s", err, out)
		}
		if out, err := kubectl("rollout", "status", "deployment/web", "--timeout=3m"); err != nil {
			pods, _ := kubectl("get", "pods", "-o", "wide")
			t.Fatalf("rollout: %v: %s\n%s", err, out, pods)
		}
		pods, err := tenant.CoreV1().Pods("default").List(ctx(t), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(pods.Items) != 2 {
			t.Fatalf("pods of web: %v %v", err, pods)
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName != nodeName || p.Status.Phase != corev1.PodRunning || !strings.HasPrefix(p.Status.PodIP, "10.36.") {
				t.Errorf("pod %s on %q, %s, IP %s", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP)
			}
		}
		name := pods.Items[0].Name
		if out, err := kubectl("exec", name, "--", "echo", "exec-ok"); err != nil || out != "exec-ok" {
			t.Errorf("kubectl exec: %v: %q", err, out)
		}
		// One pod reaches the other across the node's bridge.
		if out, err := kubectl("exec", name, "--", "wget", "-qO-", "http://"+pods.Items[1].Status.PodIP+":8080/"); err != nil || out != pods.Items[1].Name {
			t.Errorf("pod to pod: %v: %q", err, out)
		}

		// Through the tenant's CoreDNS and kube-proxy: a Service name, then its ClusterIP.
		if out, err := kubectl("expose", "deployment", "web", "--port=80", "--target-port=8080"); err != nil {
			t.Fatalf("kubectl expose: %v: %s", err, out)
		}
		t.Cleanup(func() { _, _ = kubectl("delete", "service", "web", "--wait=false") })
		svc, err := tenant.CoreV1().Services("default").Get(ctx(t), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "web.default.svc.cluster.local to resolve to "+svc.Spec.ClusterIP+" from a pod", func() error {
			out, err := kubectl("exec", name, "--", "nslookup", "web.default.svc.cluster.local")
			if err != nil || !strings.Contains(out, svc.Spec.ClusterIP) {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		eventually(t, "http://web/ to answer from a pod", func() error {
			out, err := kubectl("exec", name, "--", "wget", "-qO-", "http://web/")
			if err != nil || (out != pods.Items[0].Name && out != pods.Items[1].Name) {
				return fmt.Errorf("%v: %q", err, out)
			}
			return nil
		})

		pf := exec.Command(e.kubectl, "--kubeconfig", kubeconfig, "port-forward", "pod/"+name, ":8080")
		stdout, _ := pf.StdoutPipe()
		pf.Stderr = pf.Stdout
		if err := pf.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = pf.Process.Kill(); _ = pf.Wait() }()
		port := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				// "Forwarding from 127.0.0.1:41234 -> 8080"
				if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "Forwarding" && strings.HasPrefix(f[2], "127.0.0.1:") {
					port <- f[2]
				}
			}
			close(port)
		}()
		var addr string
		select {
		case addr = <-port:
		case <-time.After(time.Minute):
			t.Fatal("kubectl port-forward printed no local address")
		}
		conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(conn, "GET / HTTP/1.0\r\n\r\n")
		body, _ := io.ReadAll(conn)
		if !strings.HasSuffix(strings.TrimSpace(string(body)), name) {
			t.Errorf("through port-forward: %q, want the page of %s", body, name)
		}
	})

	t.Run("an image not built here fails with ErrImagePull", func(t *testing.T) {
		t.Cleanup(func() { _, _ = kubectl("delete", "pod", "unknown-image", "--wait=false") })
		if out, err := kubectl("run", "unknown-image", "--image=example.com/nothing/here:1.0", "--restart=Never"); err != nil {
			t.Fatalf("kubectl run: %v: %s", err, out)
		}
		eventually(t, "ErrImagePull or ImagePullBackOff", func() error {
			p, err := tenant.CoreV1().Pods("default").Get(ctx(t), "unknown-image", metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, s := range p.Status.ContainerStatuses {
				if w := s.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
					return nil
				}
			}
			return fmt.Errorf("%s", containerStates(p))
		})
	})
}

func containerStates(p *corev1.Pod) string {
	var out []string
	for _, s := range p.Status.ContainerStatuses {
		switch {
		case s.State.Waiting != nil:
			out = append(out, s.Name+": waiting "+s.State.Waiting.Reason+" "+s.State.Waiting.Message)
		case s.State.Terminated != nil:
			out = append(out, fmt.Sprintf("%s: terminated %s (%d)", s.Name, s.State.Terminated.Reason, s.State.Terminated.ExitCode))
		case s.State.Running != nil:
			out = append(out, s.Name+": running")
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			out = append(out, string(c.Type)+": "+c.Message)
		}
	}
	return strings.Join(out, "; ")
}
