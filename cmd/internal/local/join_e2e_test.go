package local_test

// The node join path and the konnectivity tunnel, end to end: a TCP with the three addons, a
// bootstrap token made by `kubeadm token create`, a node agent (kamaji local node-agent, playing
// the kubelet's part) in a network namespace of its own doing kubeadm's token discovery and the
// TLS bootstrap, and the real konnectivity agent beside it; the tenant apiserver then reaches
// the node's kubelet port through the tunnel, which nothing else can reach.

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/tenantpki"
	"github.com/openhcp/kamaji/sdk/testkit/child"

	"github.com/openhcp/kamaji/cmd/internal/local"
	"github.com/openhcp/kamaji/cmd/internal/local/node"
)

func init() {
	registerPlaneSubtest("a node joins with a kubeadm token and is reached through konnectivity", testJoin)
}

// The node's network: a namespace on a veth of its own, outside the pod network. The host
// answers "host unreachable" to any connection from the pod network to it, and the namespace
// accepts no incoming connection. The agents inside dial out, to the TCP's Service through the
// host (kube-proxy masquerades traffic from outside the cluster CIDR).
const (
	joinTenant  = "tenant-join"
	joinNode    = "e2e-node-0"
	joinNetNS   = "kamaji-e2e-node"
	joinVethH   = "ke2enode-h"
	joinVethN   = "ke2enode-n"
	joinHostIP  = "10.245.0.1"
	joinNodeIP  = "10.245.0.2"
	joinNodeNet = "10.245.0.0/30"
	podNetwork  = "10.244.0.0/16"
)

func testJoin(t *testing.T, e *e2e) {
	tcp := local.SampleTCP(joinTenant, "default")
	tcp.Spec.Addons = kamajiv1alpha1.AddonsSpec{
		CoreDNS:      &kamajiv1alpha1.AddonSpec{},
		KubeProxy:    &kamajiv1alpha1.AddonSpec{},
		Konnectivity: &kamajiv1alpha1.KonnectivitySpec{},
	}
	if err := e.cl.Create(ctx(t), tcp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.deleteTCP(t, joinTenant) })
	e.waitStatus(t, joinTenant, kamajiv1alpha1.VersionReady)
	eventually(t, "TenantConfigured and AddonsReady", func() error {
		got := e.tcp(t, joinTenant)
		for _, c := range []string{kamajiv1alpha1.ConditionTenantConfigured, kamajiv1alpha1.ConditionAddonsReady} {
			if cond := findCondition(got.Status.Conditions, c); cond == nil || cond.Status != metav1.ConditionTrue {
				return fmt.Errorf("%s: %+v", c, cond)
			}
		}
		return nil
	})

	// admin.conf, as a user gets it: bound to cluster-admin by the kubeadm:cluster-admins phase.
	secret, err := e.cs.CoreV1().Secrets("default").Get(ctx(t), kubeconfig.AdminSecretName(joinTenant), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	adminConf := filepath.Join(t.TempDir(), "admin.conf")
	if err := os.WriteFile(adminConf, secret.Data["admin.conf"], 0o600); err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", adminConf)
	if err != nil {
		t.Fatal(err)
	}
	tenant := kubernetes.NewForConfigOrDie(rc)
	caSecret, err := e.cs.CoreV1().Secrets("default").Get(ctx(t), tenantpki.SecretName(joinTenant, tenantpki.CA), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tenantCA := parseCert(t, caSecret.Data[tenantpki.KeyCACert])

	t.Run("the kubeadm phases and the addons are in the tenant, and a deleted addon comes back", func(t *testing.T) {
		kc, err := tenant.CoreV1().ConfigMaps("kube-system").Get(ctx(t), "kubelet-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// clusterDNS is the tenant's DNS Service IP (the defaulted dnsServiceIPs).
		var kubelet struct {
			ClusterDNS []string `json:"clusterDNS"`
		}
		if err := yaml.Unmarshal([]byte(kc.Data["kubelet"]), &kubelet); err != nil || !slices.Equal(kubelet.ClusterDNS, e.tcp(t, joinTenant).Spec.NetworkProfile.DNSServiceIPs) {
			t.Errorf("kubelet-config clusterDNS %v (%v), want the TCP's dnsServiceIPs\n%s", kubelet.ClusterDNS, err, kc.Data["kubelet"])
		}
		for _, get := range []func() error{
			func() error {
				_, err := tenant.CoreV1().ConfigMaps("kube-system").Get(ctx(t), "kubeadm-config", metav1.GetOptions{})
				return err
			},
			func() error {
				_, err := tenant.AppsV1().DaemonSets("kube-system").Get(ctx(t), "kube-proxy", metav1.GetOptions{})
				return err
			},
			func() error {
				_, err := tenant.CoreV1().Services("kube-system").Get(ctx(t), "kube-dns", metav1.GetOptions{})
				return err
			},
		} {
			if err := get(); err != nil {
				t.Error(err)
			}
		}
		old, err := tenant.AppsV1().Deployments("kube-system").Get(ctx(t), "coredns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := tenant.AppsV1().Deployments("kube-system").Delete(ctx(t), "coredns", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the coredns Deployment to be back", func() error {
			d, err := tenant.AppsV1().Deployments("kube-system").Get(ctx(t), "coredns", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if d.UID == old.UID {
				return fmt.Errorf("still the deleted one")
			}
			return nil
		})
	})

	// 1. A bootstrap token, the way an operator makes one.
	kubeadm := filepath.Join(filepath.Dir(e.kubectl), "kubeadm")
	out, err := exec.Command(kubeadm, "token", "create", "--print-join-command", "--kubeconfig", adminConf).CombinedOutput()
	if err != nil {
		t.Fatalf("kubeadm token create: %v\n%s", err, out)
	}
	join := strings.TrimSpace(string(out))
	m := regexp.MustCompile(`^kubeadm join (\S+) --token ([a-z0-9]{6})\.[a-z0-9]{16} --discovery-token-ca-cert-hash sha256:[0-9a-f]{64}$`).FindStringSubmatch(join)
	if m == nil {
		t.Fatalf("kubeadm token create --print-join-command printed %q", join)
	}
	if want := e.tcp(t, joinTenant).Status.ControlPlaneEndpoint; m[1] != want {
		t.Errorf("join endpoint %s, want the TCP's %s", m[1], want)
	}
	tokenID := m[2]
	eventually(t, "the tenant's controller manager to sign cluster-info for the token", func() error {
		cm, err := tenant.CoreV1().ConfigMaps("kube-public").Get(ctx(t), "cluster-info", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data["jws-kubeconfig-"+tokenID] == "" {
			return fmt.Errorf("no jws-kubeconfig-%s in %v", tokenID, mapKeys(cm.Data))
		}
		return nil
	})

	t.Run("kubeadm join itself accepts the tenant (dry run)", func(t *testing.T) {
		// The real kubeadm does its token discovery (signature, CA pin) and reads kubeadm-config,
		// kubelet-config and kube-proxy's configuration with the bootstrap token; --rootfs keeps
		// what it writes in a folder of the test.
		fields := strings.Fields(join)
		args := append(fields[2:], "--dry-run", "--ignore-preflight-errors=all", "--node-name", "e2e-dry-run", "--rootfs", t.TempDir())
		out, err := exec.Command(kubeadm, append([]string{"join"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubeadm join --dry-run: %v\n%s", err, tail(string(out), 30))
		}
		for _, want := range []string{
			`Reading configuration from the "kubeadm-config" ConfigMap`,
			`Resource name "kubelet-config", namespace "kube-system"`,
			`Resource name "kube-proxy", namespace "kube-system"`,
			"This node has joined the cluster",
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("kubeadm join --dry-run printed no %q:\n%s", want, tail(string(out), 30))
			}
		}
		// And it refuses a CA it was not told to trust.
		bad := slices.Clone(args)
		for i, a := range bad {
			if strings.HasPrefix(a, "sha256:") {
				bad[i] = "sha256:" + strings.Repeat("0", 64)
			}
		}
		if out, err := exec.Command(kubeadm, append([]string{"join"}, bad...)...).CombinedOutput(); err == nil || !strings.Contains(string(out), "are pinned") {
			t.Errorf("kubeadm join with a wrong CA hash: %v\n%s", err, tail(string(out), 5))
		}
	})

	// 2. The node, in a namespace of its own.
	setupNodeNetNS(t)
	certDir := t.TempDir()
	agentLog := filepath.Join(t.TempDir(), "node-agent.log")
	startInNetNS(t, agentLog, e.kamaji, "local", "node-agent", "--join-command", join,
		"--node-name", joinNode, "--node-ip", joinNodeIP, "--cert-dir", certDir)
	eventually(t, "the node agent to serve the kubelet port", func() error {
		return logHas(agentLog, "serving kubelet API on")
	})
	if err := logHas(agentLog, "discovery: cluster-info signed by token "+tokenID+", CA pinned"); err != nil {
		t.Error(err)
	}

	t.Run("the CSR was made as system:bootstrappers, auto-approved and signed by the tenant CA", func(t *testing.T) {
		csrs, err := tenant.CertificatesV1().CertificateSigningRequests().List(ctx(t), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var csr *certificatesv1.CertificateSigningRequest
		for i := range csrs.Items {
			if csrs.Items[i].Spec.Username == "system:bootstrap:"+tokenID {
				csr = &csrs.Items[i]
			}
		}
		if csr == nil {
			t.Fatalf("no CSR by system:bootstrap:%s among %d", tokenID, len(csrs.Items))
		}
		if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName || !containsString(csr.Spec.Groups, "system:bootstrappers") {
			t.Errorf("signer %s, groups %v", csr.Spec.SignerName, csr.Spec.Groups)
		}
		approved := false
		for _, c := range csr.Status.Conditions {
			approved = approved || (c.Type == certificatesv1.CertificateApproved && c.Status == corev1.ConditionTrue && c.Reason == "AutoApproved")
		}
		if !approved {
			t.Errorf("conditions %+v, want Approved/AutoApproved (the controller manager's csrapproving)", csr.Status.Conditions)
		}
		cert := parseCert(t, csr.Status.Certificate)
		if err := cert.CheckSignatureFrom(tenantCA); err != nil {
			t.Errorf("the node's certificate is not signed by the tenant CA: %v", err)
		}
		if cert.Subject.CommonName != "system:node:"+joinNode || !containsString(cert.Subject.Organization, "system:nodes") {
			t.Errorf("subject %s", cert.Subject)
		}
	})

	t.Run("the node registers and is Ready", func(t *testing.T) {
		eventually(t, "node "+joinNode+" Ready with its InternalIP", func() error {
			n, err := tenant.CoreV1().Nodes().Get(ctx(t), joinNode, metav1.GetOptions{})
			if err != nil {
				return err
			}
			ip := ""
			for _, a := range n.Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					ip = a.Address
				}
			}
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && ip == joinNodeIP {
					return nil
				}
			}
			return fmt.Errorf("addresses %v, conditions %v", n.Status.Addresses, n.Status.Conditions)
		})
		out, err := exec.Command(e.kubectl, "--kubeconfig", adminConf, "get", "nodes", "-o", "name").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "node/"+joinNode {
			t.Errorf("kubectl get nodes: %v: %s", err, out)
		}
	})

	proxyPath := "/api/v1/nodes/" + joinNode + "/proxy/healthz"
	t.Run("nothing reaches the node's kubelet port directly", func(t *testing.T) {
		// From the control-plane pod's own network namespace, and from the host.
		pods := e.tenantPods(t, joinTenant)
		if len(pods) != 1 {
			t.Fatalf("pods %v", podSummary(pods))
		}
		netns, _ := node.SandboxNames(string(pods[0].UID))
		// From the pod network the node is unreachable: the host says so at once.
		if c, err := dialIn(netns, net.JoinHostPort(joinNodeIP, "10250"), 5*time.Second); !errors.Is(err, syscall.EHOSTUNREACH) {
			if c != nil {
				c.Close()
			}
			t.Errorf("from the control-plane pod's namespace: %v, want no route to host", err)
		}
		// The host has one, but the node accepts no connection.
		if c, err := dialIn("", net.JoinHostPort(joinNodeIP, "10250"), 2*time.Second); err == nil {
			c.Close()
			t.Error("the host connected to the node's kubelet port")
		}
		// And the apiserver has no route either until an agent is connected.
		if out, err := exec.Command(e.kubectl, "--kubeconfig", adminConf, "get", "--raw", proxyPath, "--request-timeout=20s").CombinedOutput(); err == nil {
			t.Errorf("%s answered without a konnectivity agent: %s", proxyPath, out)
		}
	})

	t.Run("the tenant apiserver reaches the node through the konnectivity tunnel", func(t *testing.T) {
		// The agent the konnectivity addon rendered, run as its DaemonSet pod would run on the node:
		// its own flags, a token for its ServiceAccount and the tenant CA.
		ds, err := tenant.AppsV1().DaemonSets("kube-system").Get(ctx(t), "konnectivity-agent", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := ds.Spec.Template.Spec.Containers[0]
		tr, err := tenant.CoreV1().ServiceAccounts("kube-system").CreateToken(ctx(t), ds.Spec.Template.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"system:konnectivity-server"}, ExpirationSeconds: ptr.To[int64](3600)},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		tokenPath, caPath := filepath.Join(dir, "token"), filepath.Join(dir, "ca.crt")
		if err := os.WriteFile(tokenPath, []byte(tr.Status.Token), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(caPath, caSecret.Data[tenantpki.KeyCACert], 0o600); err != nil {
			t.Fatal(err)
		}
		var args []string
		for _, a := range append(append([]string{}, c.Command[1:]...), c.Args...) {
			switch {
			case strings.HasPrefix(a, "--ca-cert="):
				a = "--ca-cert=" + caPath
			case strings.HasPrefix(a, "--service-account-token-path="):
				a = "--service-account-token-path=" + tokenPath
			}
			args = append(args, strings.ReplaceAll(a, "$(HOST_IP)", joinNodeIP))
		}
		images, err := node.LoadImages(filepath.Join(e.state, "images.yaml"), local.DefaultConfig().Cache)
		if err != nil {
			t.Fatal(err)
		}
		img, err := images.Resolve(c.Image)
		if err != nil {
			t.Fatal(err)
		}
		bin, err := img.Lookup(c.Command[0])
		if err != nil {
			t.Fatal(err)
		}
		startInNetNS(t, filepath.Join(t.TempDir(), "konnectivity-agent.log"), bin, args...)

		var got []byte
		eventually(t, "GET "+proxyPath+" through the tunnel", func() error {
			got, err = exec.Command(e.kubectl, "--kubeconfig", adminConf, "get", "--raw", proxyPath, "--request-timeout=10s").CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, got)
			}
			return nil
		})
		if string(got) != "ok" {
			t.Errorf("%s answered %q", proxyPath, got)
		}
		// The node agent saw the apiserver's kubelet-client certificate, arriving from inside
		// the node (the konnectivity agent dials it there).
		if err := logHas(agentLog, "request GET /healthz from "+joinNodeIP+":"); err != nil {
			t.Error(err)
		}
		if out, err := exec.Command(e.kubectl, "--kubeconfig", adminConf, "get", "--raw", "/api/v1/nodes/"+joinNode+"/proxy/pods").CombinedOutput(); err != nil || !strings.Contains(string(out), `"kind":"PodList"`) {
			t.Errorf("node proxy /pods: %v: %s", err, out)
		}
		data, _ := os.ReadFile(agentLog)
		t.Logf("node agent:\n%s", tail(string(data), 12))
	})

	t.Run("after sleeping and waking, the tenant is watched and converged again", func(t *testing.T) {
		e.scale(t, joinTenant, 0)
		e.waitStatus(t, joinTenant, kamajiv1alpha1.VersionSleeping)
		eventually(t, "TenantConfigured Unknown/Sleeping (the tenant's watches stopped)", func() error {
			c := findCondition(e.tcp(t, joinTenant).Status.Conditions, kamajiv1alpha1.ConditionTenantConfigured)
			if c == nil || c.Status != metav1.ConditionUnknown || c.Reason != "Sleeping" {
				return fmt.Errorf("%+v", c)
			}
			return nil
		})
		e.scale(t, joinTenant, 1)
		e.waitStatus(t, joinTenant, kamajiv1alpha1.VersionReady)
		eventually(t, "TenantConfigured True", func() error {
			c := findCondition(e.tcp(t, joinTenant).Status.Conditions, kamajiv1alpha1.ConditionTenantConfigured)
			if c == nil || c.Status != metav1.ConditionTrue {
				return fmt.Errorf("%+v", c)
			}
			return nil
		})
		// A kubeadm phase's object and an addon's, deleted after the wake, come back: the
		// watches run again.
		for _, del := range []struct {
			what string
			get  func() (metav1.Object, error)
			del  func() error
		}{
			{"kube-public/cluster-info",
				func() (metav1.Object, error) {
					return tenant.CoreV1().ConfigMaps("kube-public").Get(ctx(t), "cluster-info", metav1.GetOptions{})
				},
				func() error {
					return tenant.CoreV1().ConfigMaps("kube-public").Delete(ctx(t), "cluster-info", metav1.DeleteOptions{})
				}},
			{"kube-system/kube-proxy",
				func() (metav1.Object, error) {
					return tenant.AppsV1().DaemonSets("kube-system").Get(ctx(t), "kube-proxy", metav1.GetOptions{})
				},
				func() error {
					return tenant.AppsV1().DaemonSets("kube-system").Delete(ctx(t), "kube-proxy", metav1.DeleteOptions{})
				}},
		} {
			var old metav1.Object
			eventually(t, del.what+" to answer after the wake", func() (err error) { old, err = del.get(); return err })
			if err := del.del(); err != nil {
				t.Fatal(err)
			}
			eventually(t, del.what+" to be back", func() error {
				o, err := del.get()
				if err != nil {
					return err
				}
				if o.GetUID() == old.GetUID() {
					return fmt.Errorf("still the deleted one")
				}
				return nil
			})
		}
	})
}

// setupNodeNetNS makes the node's namespace: a veth to the host on 10.245.0.0/30, a default
// route through the host, a firewall that drops every incoming connection (replies to the
// node's own connections pass), and on the host a rule that rejects, as unreachable, every
// connection from the pod network to the node.
func setupNodeNetNS(t *testing.T) {
	t.Helper()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// Not a routing rule: the replies to the node's connections also go from a pod to the node
	// when the host routes them (de-NAT of their source comes after routing).
	reject := []string{"FORWARD", "-s", podNetwork, "-d", joinNodeNet, "-m", "conntrack", "--ctstate", "NEW", "-j", "REJECT", "--reject-with", "icmp-host-unreachable"}
	t.Cleanup(func() {
		_ = exec.Command("iptables", append([]string{"-D"}, reject...)...).Run()
		_ = exec.Command("iptables", "-D", "FORWARD", "-i", joinVethH, "-j", "ACCEPT").Run()
		_ = exec.Command("iptables", "-D", "FORWARD", "-o", joinVethH, "-j", "ACCEPT").Run()
		_ = exec.Command("ip", "link", "del", joinVethH).Run()
		_ = exec.Command("ip", "netns", "del", joinNetNS).Run()
	})
	inNS := func(args ...string) { run(append([]string{"ip", "netns", "exec", joinNetNS}, args...)...) }
	run("ip", "netns", "add", joinNetNS)
	run("ip", "link", "add", joinVethH, "type", "veth", "peer", "name", joinVethN)
	run("ip", "link", "set", joinVethN, "netns", joinNetNS)
	run("ip", "addr", "add", joinHostIP+"/30", "dev", joinVethH)
	run("ip", "link", "set", joinVethH, "up")
	inNS("ip", "link", "set", "lo", "up")
	inNS("ip", "addr", "add", joinNodeIP+"/30", "dev", joinVethN)
	inNS("ip", "link", "set", joinVethN, "up")
	inNS("ip", "route", "add", "default", "via", joinHostIP)
	inNS("iptables", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
	inNS("iptables", "-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
	inNS("iptables", "-P", "INPUT", "DROP")
	run("iptables", "-I", "FORWARD", "-i", joinVethH, "-j", "ACCEPT")
	run("iptables", "-I", "FORWARD", "-o", joinVethH, "-j", "ACCEPT")
	run(append([]string{"iptables", "-I"}, reject...)...)
}

// startInNetNS runs a program in the node's namespace, its output in logPath, until the test ends.
func startInNetNS(t *testing.T, logPath, bin string, args ...string) {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", joinNetNS, bin}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	// dialIn ends threads (a goroutine that leaves a thread locked in another namespace kills
	// it): child.Start forks from a thread of its own, so the agent dies with the test binary
	// and not with such a thread.
	exited, err := child.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The konnectivity agent drains for a long while on SIGTERM; nothing here needs it.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		f.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("%s:\n%s", filepath.Base(logPath), tail(string(data), 40))
		}
	})
}

func logHas(path, text string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !strings.Contains(string(data), text) {
		return fmt.Errorf("%s has no %q; it ends with:\n%s", filepath.Base(path), text, tail(string(data), 10))
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("no PEM certificate in %q", data)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func mapKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
