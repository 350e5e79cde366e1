package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cmd/internal/local"
)

// olderTenantVersion is a minor of the tested window (v1.30 to v1.37) the plane does not run
// itself: `make test` builds its control plane in the background while the tests run
// (TEST_VERSIONS in the Makefile); the process node builds it when the tenant's pod asks for its
// images, and waits on hack/kube-bins.sh's lock if that build is still running.
const olderTenantVersion = "v1.33.13"

// It runs after the other subtests: on a fresh machine the build may still be running when the
// plane is up, and the later it starts waiting the less of the build it waits for.
func init() {
	registerLatePlaneSubtest("a tenant at "+olderTenantVersion+" is Ready (its binaries built on demand)", testOlderTenant)
}

// buildBudget is how long a first build of a version's control plane may take on 2 cores.
const buildBudget = 30 * time.Minute

// teardownMargin is what go test's timeout must leave after this subtest: deleting the tenant
// and taking the plane down.
const teardownMargin = 3 * time.Minute

func testOlderTenant(t *testing.T, e *e2e) {
	const name = "e2e-older"
	bin := filepath.Join(local.DefaultConfig().Cache, "kube", olderTenantVersion, "bin")
	_, err := os.Stat(filepath.Join(bin, "kube-scheduler"))
	built := err == nil
	// A build already under way (make test's, in the background) may finish in any part of the
	// budget, so the wait is what go test's timeout leaves, up to the budget, and a test that
	// cannot finish in time says why instead of being killed by the timeout.
	budget := buildBudget
	if deadline, ok := t.Deadline(); ok {
		budget = min(budget, time.Until(deadline)-teardownMargin)
	}
	notBuilt := func(why string) {
		t.Fatalf("%s is not built (%s) and %s: run `make kube-bins VERSIONS=%s` first, "+
			"or go test -timeout 90m to watch the node build it", olderTenantVersion, bin, why, olderTenantVersion)
	}
	if !built && budget < 2*time.Minute {
		notBuilt(fmt.Sprintf("go test's timeout leaves %s", budget.Round(time.Second)))
	}

	tcp := local.SampleTCP(name, "default")
	tcp.Spec.Kubernetes.Version = olderTenantVersion
	if err := e.cl.Create(ctx(t), tcp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.deleteTCP(t, name) })

	if !built {
		// The pod waits, saying what is being built, as a kubelet says it pulls an image.
		eventually(t, "the pod to report the build", func() error {
			for _, pod := range e.tenantPods(t, name) {
				for _, cs := range pod.Status.ContainerStatuses {
					if w := cs.State.Waiting; w != nil && strings.Contains(w.Message, "building kube-apiserver@"+olderTenantVersion) {
						return nil
					}
				}
			}
			return fmt.Errorf("no container reports the build")
		})
	}
	start, lastLog := time.Now(), time.Now()
	var state string
	if err := wait.PollUntilContextTimeout(context.Background(), 2*time.Second, budget, true, func(context.Context) (bool, error) {
		cur := e.tcp(t, name)
		if s := cur.Status.Kubernetes.Version.Status; s != nil && *s == kamajiv1alpha1.VersionReady {
			return true, nil
		}
		state = fmt.Sprintf("status %v, conditions %v", cur.Status.Kubernetes.Version.Status, cur.Status.Conditions)
		if time.Since(lastLog) > time.Minute {
			lastLog = time.Now()
			for _, pod := range e.tenantPods(t, name) {
				for _, cs := range pod.Status.ContainerStatuses {
					if w := cs.State.Waiting; w != nil {
						t.Logf("%s after %s: %s %s: %s", pod.Name, time.Since(start).Round(time.Second), cs.Name, w.Reason, w.Message)
					}
				}
			}
		}
		return false, nil
	}); err != nil {
		if _, err := os.Stat(filepath.Join(bin, "kube-scheduler")); err != nil {
			notBuilt(fmt.Sprintf("its build did not finish in the %s go test's timeout left", budget.Round(time.Second)))
		}
		t.Fatalf("%s at %s not Ready after %s: %s", name, olderTenantVersion, budget.Round(time.Second), state)
	}
	t.Logf("%s Ready on %s after %s", name, olderTenantVersion, time.Since(start).Round(time.Second))

	cur := e.tcp(t, name)
	if got := cur.Status.Kubernetes.Version.Version; got != olderTenantVersion {
		t.Errorf("status version %q", got)
	}
	if c := meta.FindStatusCondition(cur.Status.Conditions, kamajiv1alpha1.ConditionKubernetesVersionTested); c == nil || c.Status != "True" {
		t.Errorf("KubernetesVersionTested %+v", c)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(e.tenantREST(t, name))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the tenant apiserver to answer as "+olderTenantVersion, func() error {
		v, err := dc.ServerVersion()
		if err != nil {
			return err
		}
		if v.GitVersion != olderTenantVersion {
			return fmt.Errorf("the tenant runs %s", v.GitVersion)
		}
		return nil
	})
}
