package tenantcontrolplane

import (
	"context"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/controlplane"
	"github.com/openhcp/kamaji/core/tenant/writeblock"
)

// unfreezeReplicas lifts the write freeze on the control-plane replicas of the Deployment's
// current template, reached by pod IP, without waiting for the replicas of the previous
// template to stop (their apiserver holds its watches for its shutdown grace, tens of seconds).
//
// It is safe because the freeze lives in each store: the current replicas all run on the
// DataStore the status names, so deleting the freeze through one of them lifts it there and
// nowhere else; the replicas leaving still read the other store, where the freeze stays until
// they are gone. Through the Service the delete could reach a leaving replica and open the slice
// being left to writes that would be lost.
//
// It reports false, with no error, when the current replicas cannot be told apart or reached
// (no pod IP, a manager outside the pod network): the caller then waits for the leaving
// replicas to stop and lifts the freeze through the Service.
func (r *Reconciler) unfreezeReplicas(ctx context.Context, p *pass, replicas int32) (bool, error) {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	if r.Tenants == nil || replicas == 0 {
		return false, nil
	}
	dep := &appsv1.Deployment{}
	key := client.ObjectKey{Namespace: p.status.Kubernetes.Deployment.Namespace, Name: p.status.Kubernetes.Deployment.Name}
	// From the API: the manager's cache keeps no pod spec of Deployments (core/manager).
	if err := r.uncached().Get(ctx, key, dep); err != nil {
		return false, nil
	}
	var pods corev1.PodList
	if err := r.uncached().List(ctx, &pods, client.InNamespace(p.tcp.Namespace), client.MatchingLabels{kamajiv1alpha1.NameLabel: p.tcp.Name}); err != nil {
		return false, nil
	}
	current := currentReplicas(dep, pods.Items)
	if len(current) < int(replicas) {
		return false, nil
	}
	kc, err := r.superAdminKubeconfig(ctx, p)
	if err != nil {
		return false, err
	}
	clients := make([]client.Client, 0, len(current))
	for _, pod := range current {
		port := apiServerPort(&pod.Spec)
		if port == 0 {
			return false, nil
		}
		c, err := r.Tenants.ReplicaClient(kc, pod.Status.PodIP, port, writeblock.RESTMapper())
		if err != nil {
			return false, nil
		}
		clients = append(clients, c)
	}
	if err := Freeze.Remove(ctx, clients[0]); err != nil {
		log.FromContext(ctx).Info("lifting the freeze by pod IP failed: waiting for the leaving replicas instead", "pod", current[0].Name, "error", err.Error())
		return false, nil
	}
	// Each replica drops the removed configuration from its own informer: the freeze is over once no
	// current replica refuses a write.
	for i, c := range clients {
		enforced, err := Freeze.Enforced(ctx, c, metav1.NamespaceDefault)
		if err != nil || enforced {
			e := failf(cond, ReasonMigrating, "waiting for the apiserver of pod %s to lift the write freeze", current[i].Name)
			if err != nil {
				e = fail(cond, ReasonMigrating, fmt.Errorf("checking the write freeze is lifted on pod %s: %w", current[i].Name, err))
			}
			e.retryAfter = freezeRecheck
			return false, e
		}
	}
	return true, nil
}

// currentReplicas are the running, ready, not terminating pods built from the Deployment's
// current template: the same pod-template checksum and the same commands and arguments, which
// name the datastore (servers, prefix, kine endpoint), in every container.
func currentReplicas(dep *appsv1.Deployment, pods []corev1.Pod) []corev1.Pod {
	tmpl := dep.Spec.Template
	var out []corev1.Pod
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Status.PodIP == "" || !podReady(&pod) ||
			pod.Annotations[controlplane.SecretsChecksumAnnotation] != tmpl.Annotations[controlplane.SecretsChecksumAnnotation] ||
			!sameCommands(tmpl.Spec.Containers, pod.Spec.Containers) {
			continue
		}
		out = append(out, pod)
	}
	return out
}

func sameCommands(want, got []corev1.Container) bool {
	if len(want) != len(got) {
		return false
	}
	for _, w := range want {
		i := slices.IndexFunc(got, func(c corev1.Container) bool { return c.Name == w.Name })
		if i < 0 || !slices.Equal(w.Command, got[i].Command) || !slices.Equal(w.Args, got[i].Args) {
			return false
		}
	}
	return true
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// apiServerPort is the kube-apiserver container's first port.
func apiServerPort(spec *corev1.PodSpec) int32 {
	for _, c := range spec.Containers {
		if c.Name == controlplane.APIServerContainer && len(c.Ports) > 0 {
			return c.Ports[0].ContainerPort
		}
	}
	return 0
}
