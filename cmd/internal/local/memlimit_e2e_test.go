package local_test

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/controlplane"
	"github.com/openhcp/kamaji/core/metrics/metricstest"

	"github.com/openhcp/kamaji/cmd/internal/local"
)

func init() {
	registerPlaneSubtest("memory limits set each component's GOMEMLIMIT, which its Go runtime takes", testGoMemLimit)
}

// testGoMemLimit gives a tenant's three components and its konnectivity server (whose container
// the addon plugin renders) memory limits and checks that each process runs with 90% of its
// limit as GOMEMLIMIT, and that the apiserver's Go runtime took it (its own
// go_gc_gomemlimit_bytes); tenant-00, with no limits, keeps Go's default (no limit).
func testGoMemLimit(t *testing.T, e *e2e) {
	const name, konnectivityServer = "e2e-memlimit", "konnectivity-server"
	limits := map[string]string{
		controlplane.APIServerContainer:         "1Gi",
		controlplane.ControllerManagerContainer: "512Mi",
		controlplane.SchedulerContainer:         "300M",
		konnectivityServer:                      "128Mi",
	}
	mem := func(container string) *corev1.ResourceRequirements {
		return &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(limits[container])}}
	}
	tcp := local.SampleTCP(name, "default")
	tcp.Spec.ControlPlane.Deployment.Resources = &kamajiv1alpha1.ControlPlaneComponentsResources{
		APIServer:         mem(controlplane.APIServerContainer),
		ControllerManager: mem(controlplane.ControllerManagerContainer),
		Scheduler:         mem(controlplane.SchedulerContainer),
	}
	tcp.Spec.Addons.Konnectivity = &kamajiv1alpha1.KonnectivitySpec{
		KonnectivityServerSpec: kamajiv1alpha1.KonnectivityServerSpec{Resources: mem(konnectivityServer)},
	}
	if err := e.cl.Create(ctx(t), tcp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.deleteTCP(t, name) })
	e.waitStatus(t, name, kamajiv1alpha1.VersionReady)

	want := map[string]int64{}
	for c := range limits {
		v, ok := controlplane.GoMemLimit(*mem(c))
		if !ok {
			t.Fatalf("no GOMEMLIMIT for a %s limit", limits[c])
		}
		want[c] = v
	}
	apiServerLimit := want[controlplane.APIServerContainer]
	pods := e.tenantPods(t, name)
	if len(pods) != 1 {
		t.Fatalf("pods %v", podSummary(pods))
	}
	for _, cs := range pods[0].Status.ContainerStatuses {
		w, ok := want[cs.Name]
		if !ok {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimPrefix(cs.ContainerID, "local://"))
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatalf("%s (container id %s): %v", cs.Name, cs.ContainerID, err)
		}
		if got := envOf(environ, "GOMEMLIMIT"); got != strconv.FormatInt(w, 10) {
			t.Errorf("%s (limit %s) runs with GOMEMLIMIT=%q, want %d", cs.Name, limits[cs.Name], got, w)
		}
		delete(want, cs.Name)
	}
	if len(want) > 0 {
		t.Errorf("no running container for %v in %v", want, podSummary(pods))
	}

	e.writeKubeconfig(t, name)
	if got := goMemLimitMetric(t, e, name); got != float64(apiServerLimit) {
		t.Errorf("%s's apiserver reports go_gc_gomemlimit_bytes %v, want %d (90%% of 1Gi)", name, got, apiServerLimit)
	}
	if got := goMemLimitMetric(t, e, "tenant-00"); got != math.MaxInt64 {
		t.Errorf("tenant-00 (no memory limit) reports go_gc_gomemlimit_bytes %v, want Go's default (no limit)", got)
	}
}

// envOf reads a variable of a NUL-separated /proc/<pid>/environ.
func envOf(environ []byte, name string) string {
	for _, kv := range bytes.Split(environ, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(name+"=")); ok {
			return string(v)
		}
	}
	return ""
}

// goMemLimitMetric is the memory limit the tenant apiserver's Go runtime runs with, from its
// /metrics.
func goMemLimitMetric(t *testing.T, e *e2e, tenant string) float64 {
	t.Helper()
	// kubectlT trims the output; the text format ends with a newline.
	f, err := metricstest.Parse(strings.NewReader(e.kubectlT(t, tenant, "get", "--raw", "/metrics") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	v, ok := f.Value("go_gc_gomemlimit_bytes", nil)
	if !ok {
		t.Fatalf("%s's apiserver has no go_gc_gomemlimit_bytes", tenant)
	}
	return v
}
