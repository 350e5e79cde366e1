package main

import (
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// bumpKey is the pod annotation a scenario changes to make every TCP reconcile and roll its
// Deployment (a spec change: the generation moves, the Deployment's template must follow).
const bumpKey = "chaos.kamaji.clastix.io/bump"

func tcpName(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i) }

func newTCP(name string) *kamajiv1alpha1.TenantControlPlane {
	return &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			ControlPlane: kamajiv1alpha1.ControlPlane{Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"}},
			Kubernetes:   kamajiv1alpha1.KubernetesSpec{Version: "v1.37.2"},
		},
	}
}

// createTCPs creates prefix-000 .. prefix-(n-1), 20 at a time.
func (h *harness) createTCPs(prefix string, n int) error {
	return parallel(n, func(i int) error {
		return retry(h.ctx, time.Minute, func() error {
			err := h.c.Create(h.ctx, newTCP(tcpName(prefix, i)))
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		})
	})
}

// bump sets the bump annotation of the TCPs' pods to value.
func (h *harness) bump(names []string, value string) error {
	patch := fmt.Appendf(nil, `{"spec":{"controlPlane":{"deployment":{"podAdditionalMetadata":{"annotations":{%q:%q}}}}}}`, bumpKey, value)
	return parallel(len(names), func(i int) error {
		tcp := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: names[i], Namespace: namespace}}
		return retry(h.ctx, time.Minute, func() error { return h.c.Patch(h.ctx, tcp, client.RawPatch(types.MergePatchType, patch)) })
	})
}

func (h *harness) deleteTCPs(names []string) error {
	return parallel(len(names), func(i int) error {
		tcp := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: names[i], Namespace: namespace}}
		return retry(h.ctx, time.Minute, func() error { return client.IgnoreNotFound(h.c.Delete(h.ctx, tcp)) })
	})
}

// snapshot is the TCPs of a prefix and their Deployments, as listed at one moment.
type snapshot struct {
	tcps map[string]*kamajiv1alpha1.TenantControlPlane
	deps map[string]*appsv1.Deployment
}

func (h *harness) snapshot(prefix string) (snapshot, error) {
	s := snapshot{tcps: map[string]*kamajiv1alpha1.TenantControlPlane{}, deps: map[string]*appsv1.Deployment{}}
	var tcps kamajiv1alpha1.TenantControlPlaneList
	if err := h.c.List(h.ctx, &tcps, client.InNamespace(namespace)); err != nil {
		return s, err
	}
	for i := range tcps.Items {
		if strings.HasPrefix(tcps.Items[i].Name, prefix+"-") {
			s.tcps[tcps.Items[i].Name] = &tcps.Items[i]
		}
	}
	var deps appsv1.DeploymentList
	if err := h.c.List(h.ctx, &deps, client.InNamespace(namespace)); err != nil {
		return s, err
	}
	for i := range deps.Items {
		if strings.HasPrefix(deps.Items[i].Name, prefix+"-") {
			s.deps[deps.Items[i].Name] = &deps.Items[i]
		}
	}
	return s, nil
}

// converged: what the manager does for a TCP whose pods cannot run is done. Its latest spec is
// observed, its datastore slice, certificates and kubeconfigs are Ready, and its Deployment
// exists with the pod template of that spec (bump, when set, is the annotation it must carry).
// Ready itself needs running pods, which this suite has none of.
func converged(tcp *kamajiv1alpha1.TenantControlPlane, dep *appsv1.Deployment, bump string) bool {
	if tcp == nil || dep == nil || tcp.Status.ObservedGeneration != tcp.Generation {
		return false
	}
	for _, c := range []string{kamajiv1alpha1.ConditionDataStoreReady, kamajiv1alpha1.ConditionCertificatesReady, kamajiv1alpha1.ConditionKubeconfigsReady} {
		if !meta.IsStatusConditionTrue(tcp.Status.Conditions, c) {
			return false
		}
	}
	return bump == "" || dep.Spec.Template.Annotations[bumpKey] == bump
}

// countConverged counts the named TCPs that converged (bump as in converged).
func (s snapshot) countConverged(names []string, bump string) int {
	n := 0
	for _, name := range names {
		if converged(s.tcps[name], s.deps[name], bump) {
			n++
		}
	}
	return n
}

// waitConverged waits until every named TCP converged and returns how long it took, or an
// error naming how many did not within timeout.
func (h *harness) waitConverged(prefix string, names []string, bump string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	done := 0
	err := retry(h.ctx, timeout, func() error {
		s, err := h.snapshot(prefix)
		if err != nil {
			return err
		}
		if done = s.countConverged(names, bump); done < len(names) {
			return fmt.Errorf("%d of %d TCPs converged", done, len(names))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("%w (manager log %s)", err, h.logPath)
	}
	return time.Since(start), nil
}

// liveTenants are the TCPs of prefix that exist, with the slice each asks for.
func (s snapshot) liveTenants() []liveTenant {
	var out []liveTenant
	for _, t := range s.tcps {
		out = append(out, liveTenant{UID: string(t.UID), Schema: t.Spec.DataStoreSchema, Username: t.Spec.DataStoreUsername})
	}
	return out
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = tcpName(prefix, i)
	}
	return out
}

// parallel runs f(0..n-1), 20 at a time, and returns the first error.
func parallel(n int, f func(i int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 20)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := f(i); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// createOne creates one TCP, retrying while admission or the apiserver refuse it.
func (h *harness) createOne(name string) error {
	return retry(h.ctx, time.Minute, func() error {
		err := h.c.Create(h.ctx, newTCP(name))
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
}
