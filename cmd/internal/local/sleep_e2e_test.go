package local_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openhcp/kamaji/cmd/internal/local"
	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/sleep"
)

func init() {
	registerPlaneSubtest("automatic sleep and wake", testSleepWake)
}

// testSleepWake opts tenant-00 and tenant-01 into automatic sleep after 30 s. A client keeps
// asking tenant-00 for its version and namespaces; nobody talks to tenant-01. tenant-01 falls asleep
// (status Sleeping, no pod) while tenant-00 stays awake with the same pods; then a plain
// `kubectl get ns` against the sleeping tenant-01 succeeds, held while it wakes. Two more
// tenants, exposed through a NodePort and through a LoadBalancer (its address given by the test,
// as a load-balancer implementation would), sleep beside tenant-01 and wake the same way through
// their own exposure.
func testSleepWake(t *testing.T, e *e2e) {
	const busy, idle = "tenant-00", "tenant-01"
	exposed := e.createSleepyExposedTCPs(t)
	for _, name := range []string{busy, idle} {
		e.patchTCP(t, name, func(tcp *kamajiv1alpha1.TenantControlPlane) {
			metav1.SetMetaDataAnnotation(&tcp.ObjectMeta, kamajiv1alpha1.SleepAfterAnnotation, "30s")
		})
	}
	t.Cleanup(func() {
		for _, name := range []string{busy, idle} {
			e.patchTCP(t, name, func(tcp *kamajiv1alpha1.TenantControlPlane) {
				delete(tcp.Annotations, kamajiv1alpha1.SleepAfterAnnotation)
			})
		}
		for _, name := range []string{busy, idle} {
			e.waitSleepCondition(t, name, "")
			e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
		}
	})
	// The annotation adds the activity audit to the apiservers: they roll once.
	for _, name := range []string{busy, idle} {
		e.waitSleepCondition(t, name, sleep.ReasonAwake)
		e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
	}

	poll := startRawPoller(e.tenantREST(t, busy))
	defer poll.halt()
	var busyPods string
	eventually(t, busy+"'s rollout to finish", func() error {
		pods := e.tenantPods(t, busy)
		for _, p := range pods {
			if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("pods %v", podSummary(pods))
			}
		}
		busyPods = podUIDs(pods)
		return nil
	})

	t.Run("the idle tenant sleeps, the busy one does not", func(t *testing.T) {
		start := time.Now()
		e.waitSleepCondition(t, idle, sleep.ReasonIdle)
		e.waitStatus(t, idle, kamajiv1alpha1.VersionSleeping)
		e.waitNoTenantPods(t, idle)
		t.Logf("%s asleep %s after the rollout", idle, time.Since(start).Round(time.Second))
		for _, name := range append(exposed, sleepyDrain) {
			e.waitSleepCondition(t, name, sleep.ReasonIdle)
			e.waitStatus(t, name, kamajiv1alpha1.VersionSleeping)
			// A terminating apiserver still answers: the wake below must find none.
			e.waitNoTenantPods(t, name)
		}
		tcp := e.tcp(t, busy)
		if c := meta.FindStatusCondition(tcp.Status.Conditions, kamajiv1alpha1.ConditionSleeping); c == nil || c.Reason != sleep.ReasonAwake {
			t.Errorf("%s, polled every 100 ms, has Sleeping condition %+v", busy, c)
		}
		if got := podUIDs(e.tenantPods(t, busy)); got != busyPods {
			t.Errorf("%s's pods changed while it was polled: %s, were %s", busy, got, busyPods)
		}
	})

	t.Run("kubectl against the sleeping tenant succeeds", func(t *testing.T) {
		start := time.Now()
		cmd := exec.Command(e.kubectl, "--kubeconfig", filepath.Join(e.state, idle+".kubeconfig"), "--request-timeout=2m", "get", "ns", "-o", "name")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "namespace/kube-system") {
			t.Fatalf("kubectl get ns against the sleeping %s: %v\n%s", idle, err, out)
		}
		t.Logf("woken and answered in %s", time.Since(start).Round(100*time.Millisecond))
		e.waitSleepCondition(t, idle, sleep.ReasonAwake)
		e.waitStatus(t, idle, kamajiv1alpha1.VersionReady)
		eventually(t, "a direct answer from "+idle, func() error {
			_, err := e.kubectlErr(idle, "get", "ns")
			return err
		})
	})
	for _, name := range exposed {
		t.Run("kubectl against the sleeping "+name+" succeeds", func(t *testing.T) {
			endpoint := e.tcp(t, name).Status.ControlPlaneEndpoint
			start := time.Now()
			cmd := exec.Command(e.kubectl, "--kubeconfig", filepath.Join(e.state, name+".kubeconfig"), "--server", "https://"+endpoint,
				"--request-timeout=2m", "get", "ns", "-o", "name")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "namespace/kube-system") {
				t.Fatalf("kubectl get ns against the sleeping %s at %s: %v\n%s", name, endpoint, err, out)
			}
			t.Logf("%s woken through %s and answered in %s", name, endpoint, time.Since(start).Round(100*time.Millisecond))
			e.waitSleepCondition(t, name, sleep.ReasonAwake)
			e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
		})
	}
	t.Run("a stopping manager serves its webhooks and relays the wake connection it receives", func(t *testing.T) {
		e.wakeThroughStoppingManager(t, sleepyDrain)
	})
	poll.halt()
	if answers, failures, _ := poll.result(); answers == 0 || len(failures) > 0 {
		t.Errorf("polling %s: %d answers, %d failures: %v", busy, answers, len(failures), failures)
	}
}

// wakeThroughStoppingManager deletes the manager's pod (whose address the wake EndpointSlice of
// the sleeping name still lists, as kube-proxy's rules do for a moment) and, once the pod has
// its SIGTERM, sends kubectl get ns to its wake port of name and calls its webhook server until
// it logs the end of its shutdown delay (core/manager.SignalContext). Meanwhile the stopping
// manager answers the webhook calls, takes the connection, wakes name and relays the
// connection, after its ports closed if need be (core/sleep). Then its new pod replaces it.
func (e *e2e) wakeThroughStoppingManager(t *testing.T, name string) {
	t.Helper()
	e.waitSleepCondition(t, name, sleep.ReasonIdle)
	e.waitStatus(t, name, kamajiv1alpha1.VersionSleeping)
	e.waitNoTenantPods(t, name)
	old, err := local.ManagerPod(ctx(t), e.cs)
	if err != nil {
		t.Fatal(err)
	}
	var port int32
	eventually(t, name+"'s wake EndpointSlice to list "+old.Name, func() error {
		ws, err := e.cs.DiscoveryV1().EndpointSlices("default").Get(ctx(t), name+"-wake", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, ep := range ws.Endpoints {
			if slices.Contains(ep.Addresses, old.Status.PodIP) && len(ws.Ports) == 1 && ws.Ports[0].Port != nil {
				port = *ws.Ports[0].Port
				return nil
			}
		}
		return fmt.Errorf("endpoints %+v", ws.Endpoints)
	})
	if err := e.cs.CoreV1().Pods(local.ManagerNamespace).Delete(ctx(t), old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The process node serves no logs through the API: its log file.
	logged := func(msg string) bool {
		logs, err := os.ReadFile(local.ContainerLogPath(e.state, old, "manager"))
		return err == nil && strings.Contains(string(logs), `"msg":"`+msg+`"`)
	}
	eventually(t, old.Name+" to log its SIGTERM", func() error {
		if !logged("stopping after the shutdown delay, serving meanwhile") {
			return fmt.Errorf("no shutdown delay in its log")
		}
		return nil
	})
	t.Logf("%s in its shutdown delay %s after its deletion", old.Name, time.Since(start).Round(100*time.Millisecond))
	// The tenant's certificate names the address its clients use, not the manager pod's.
	type result struct {
		out  []byte
		err  error
		took time.Duration
	}
	woken := make(chan result, 1)
	go func() {
		out, err := exec.Command(e.kubectl, "--kubeconfig", filepath.Join(e.state, name+".kubeconfig"),
			"--server", "https://"+net.JoinHostPort(old.Status.PodIP, strconv.Itoa(int(port))), "--tls-server-name", local.DefaultConfig().Gateway,
			"--request-timeout=2m", "get", "ns", "-o", "name").CombinedOutput()
		woken <- result{out, err, time.Since(start)}
	}()
	// The admin apiserver's admission calls and the tenants' webhook calls may reach it until
	// the endpoints and kube-proxy lead elsewhere: each call made before it logs the end of its
	// delay is answered. (controller-runtime stops the webhook server last: without a delay one
	// made just after the SIGTERM is answered too, but the end is logged at once.)
	answered := 0
	eventually(t, old.Name+" to log the end of its shutdown delay", func() error {
		msg, err := callTenantDeny(old.Status.PodIP, "e2e-stopping-manager")
		if logged("stopping") {
			return nil
		}
		if err != nil || msg != "e2e-stopping-manager" {
			t.Fatalf("the webhook server of %s, in its shutdown delay: %v (message %q)", old.Name, err, msg)
		}
		answered++
		return fmt.Errorf("%d webhook calls answered, no end of the delay logged", answered)
	})
	if answered == 0 {
		t.Fatalf("%s logged the end of its shutdown delay before a webhook call was answered", old.Name)
	}
	t.Logf("%s answered %d webhook calls in its shutdown delay, which ended %s after its deletion", old.Name, answered, time.Since(start).Round(100*time.Millisecond))
	r := <-woken
	if r.err != nil || !strings.Contains(string(r.out), "namespace/kube-system") {
		t.Fatalf("kubectl get ns against the sleeping %s through the stopping manager pod %s: %v\n%s", name, old.Name, r.err, r.out)
	}
	t.Logf("%s woken through the stopping manager and answered %s after its deletion", name, r.took.Round(100*time.Millisecond))
	e.waitManagerReplaced(t, old.Name)
	e.waitSleepCondition(t, name, sleep.ReasonAwake)
	e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
}

// callTenantDeny sends an AdmissionReview to the manager webhook server at ip's /tenant/deny/msg
// (core/webhooks), the handler the tenants' webhook configurations call, and returns the
// message of its refusal.
func callTenantDeny(ip, msg string) (string, error) {
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &admissionv1.AdmissionRequest{UID: "e2e", Operation: admissionv1.Create},
	}
	body, err := json.Marshal(review)
	if err != nil {
		return "", err
	}
	// What is checked is that the pod answers, not who it is: its certificate names the
	// webhook Service. Each call is a new connection, as a new admission call may be.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Post("https://"+net.JoinHostPort(ip, "9443")+"/tenant/deny/"+msg, "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var got admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		return "", fmt.Errorf("%s: %w", resp.Status, err)
	}
	if got.Response == nil || got.Response.Allowed || got.Response.Result == nil {
		return "", fmt.Errorf("%s: response %+v", resp.Status, got.Response)
	}
	return got.Response.Result.Message, nil
}

// waitNoTenantPods waits until name has no pod, not even a terminating one (which still
// answers).
func (e *e2e) waitNoTenantPods(t *testing.T, name string) {
	t.Helper()
	eventually(t, name+"'s pods to be gone", func() error {
		if pods := e.tenantPods(t, name); len(pods) > 0 {
			return fmt.Errorf("pods %v", podSummary(pods))
		}
		return nil
	})
}

// Sleeping tenants exposed otherwise than through a ClusterIP.
const (
	sleepyNodePort     = "e2e-sleep-nodeport"
	sleepyLoadBalancer = "e2e-sleep-lb"
	// sleepyDrain sleeps beside them, to be woken through a stopping manager pod: a NodePort
	// tenant, whose certificate names the host bridge's address.
	sleepyDrain = "e2e-sleep-drain"
	// sleepyNodePortPort is the NodePort tenant's apiserver port, also its node port (Kamaji's rule).
	sleepyNodePortPort = 31443
	sleepyDrainPort    = 31444
	// sleepyLBAddress is the address the test gives the LoadBalancer tenant's Service, as a
	// load-balancer implementation would; kube-proxy routes it (TEST-NET-2, used by nobody).
	sleepyLBAddress = "198.51.100.7"
)

// createSleepyExposedTCPs creates a NodePort tenant reached at the host bridge's address and a
// LoadBalancer tenant, both with the sleep annotation, and sleepyDrain, waits until each answers
// kubectl through its endpoint, deletes them when the test ends, and returns the first two.
func (e *e2e) createSleepyExposedTCPs(t *testing.T) []string {
	t.Helper()
	cfg := local.DefaultConfig()
	np := local.SampleTCP(sleepyNodePort, "default")
	np.Spec.ControlPlane.Service.ServiceType = kamajiv1alpha1.ServiceTypeNodePort
	np.Spec.NetworkProfile.Address = cfg.Gateway // the process node's address
	np.Spec.NetworkProfile.Port = sleepyNodePortPort
	lb := local.SampleTCP(sleepyLoadBalancer, "default")
	lb.Spec.ControlPlane.Service.ServiceType = kamajiv1alpha1.ServiceTypeLoadBalancer
	drain := np.DeepCopy()
	drain.Name, drain.Spec.NetworkProfile.Port = sleepyDrain, sleepyDrainPort
	for _, tcp := range []*kamajiv1alpha1.TenantControlPlane{np, lb, drain} {
		metav1.SetMetaDataAnnotation(&tcp.ObjectMeta, kamajiv1alpha1.SleepAfterAnnotation, "30s")
		if err := e.cl.Create(ctx(t), tcp); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.deleteTCP(t, tcp.Name) })
	}
	// What a layer-2 load balancer provides: the address reaches this machine, where kube-proxy
	// rewrites it (without a route it would leave through the default route, or nowhere).
	if out, err := exec.Command("ip", "route", "replace", sleepyLBAddress+"/32", "dev", cfg.Bridge, "src", cfg.Gateway).CombinedOutput(); err != nil {
		t.Fatalf("routing %s: %v %s", sleepyLBAddress, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "route", "del", sleepyLBAddress+"/32").Run() })
	eventually(t, "the LoadBalancer Service to be given "+sleepyLBAddress, func() error {
		svc, err := e.cs.CoreV1().Services("default").Get(ctx(t), sleepyLoadBalancer, metav1.GetOptions{})
		if err != nil {
			return err
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: sleepyLBAddress}}
		_, err = e.cs.CoreV1().Services("default").UpdateStatus(ctx(t), svc, metav1.UpdateOptions{})
		return err
	})
	for _, want := range []struct{ name, endpoint string }{
		{sleepyNodePort, fmt.Sprintf("%s:%d", cfg.Gateway, sleepyNodePortPort)},
		{sleepyLoadBalancer, sleepyLBAddress + ":6443"},
		{sleepyDrain, fmt.Sprintf("%s:%d", cfg.Gateway, sleepyDrainPort)},
	} {
		e.waitKineReady(t, want.name) // Ready within 5 minutes
		if got := e.tcp(t, want.name).Status.ControlPlaneEndpoint; got != want.endpoint {
			t.Fatalf("%s's endpoint is %s, want %s", want.name, got, want.endpoint)
		}
		e.writeKubeconfig(t, want.name)
	}
	return []string{sleepyNodePort, sleepyLoadBalancer}
}

// podUIDs identifies a set of pods: it changes when one is replaced.
func podUIDs(pods []corev1.Pod) string {
	uids := make([]string, 0, len(pods))
	for _, p := range pods {
		uids = append(uids, string(p.UID))
	}
	sort.Strings(uids)
	return strings.Join(uids, ",")
}

// waitSleepCondition waits until the TCP's Sleeping condition has reason ("": no condition).
func (e *e2e) waitSleepCondition(t *testing.T, name, reason string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s's Sleeping condition to be %q", name, reason), func() error {
		c := meta.FindStatusCondition(e.tcp(t, name).Status.Conditions, kamajiv1alpha1.ConditionSleeping)
		switch {
		case c == nil && reason == "":
			return nil
		case c != nil && c.Reason == reason:
			return nil
		}
		return fmt.Errorf("condition %+v", c)
	})
}
