package tenantcontrolplane

import (
	"context"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/controlplane"
	"github.com/openhcp/kamaji/core/exposure"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/tenantpki"
)

const ReasonDeploymentFailed = "DeploymentFailed"

// stepDeployment applies the control-plane Deployment and mirrors its status.
func stepDeployment(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionControlPlaneAvailable
	name := func(k tenantpki.Kind) string { return tenantpki.SecretName(p.tcp.Name, k) }
	replicas, err := r.startSlot(ctx, p, p.replicas())
	if err != nil {
		return err
	}
	in := controlplane.Input{
		TCP: p.tcp, Replicas: ptr.To(replicas),
		Secrets: controlplane.Secrets{
			CA: name(tenantpki.CA), APIServer: name(tenantpki.APIServer), APIServerKubeletClient: name(tenantpki.APIServerKubeletClient),
			FrontProxyCA: name(tenantpki.FrontProxyCA), FrontProxyClient: name(tenantpki.FrontProxyClient), ServiceAccount: name(tenantpki.ServiceAccount),
			ControllerManagerKubeconfig: kubeconfig.ControllerManagerSecretName(p.tcp.Name), SchedulerKubeconfig: kubeconfig.SchedulerSecretName(p.tcp.Name),
		},
		CATrustBundle: len(p.secrets[name(tenantpki.CA)][tenantpki.KeyCABundle]) > 0,
		Labels:        exposure.Labels(p.tcp),
		Additions:     p.additions,
	}
	storage, err := deploymentStorage(ctx, r, p)
	if err != nil {
		return err
	}
	in.Etcd, in.EtcdServersOverrides, in.Kine = storage.Etcd, storage.Overrides, storage.Kine
	in.SecretsChecksum = secretsChecksum(p.secrets) // with the storage Secret
	dep, err := controlplane.Build(in)
	if err != nil {
		return fail(cond, ReasonDeploymentFailed, err)
	}
	if err := recordStorage(dep, storage); err != nil {
		return fail(cond, ReasonDeploymentFailed, err)
	}
	owned(p.tcp, dep)
	if err := apply.Apply(ctx, r.Client, dep); err != nil {
		return fail(cond, ReasonDeploymentFailed, err)
	}
	ds := &p.status.Kubernetes.Deployment
	if ds.ObservedGeneration != dep.Status.ObservedGeneration || ds.Replicas != dep.Status.Replicas || ds.UpdatedReplicas != dep.Status.UpdatedReplicas {
		ds.LastUpdate = metav1.NewTime(p.now)
	}
	ds.Name, ds.Namespace = dep.Name, dep.Namespace
	ds.Selector = labels.SelectorFromSet(dep.Spec.Selector.MatchLabels).String()
	ds.ObservedGeneration = dep.Status.ObservedGeneration
	ds.Replicas, ds.UpdatedReplicas = dep.Status.Replicas, dep.Status.UpdatedReplicas
	ds.ReadyReplicas, ds.AvailableReplicas, ds.UnavailableReplicas = dep.Status.ReadyReplicas, dep.Status.AvailableReplicas, dep.Status.UnavailableReplicas
	ds.Conditions = dep.Status.Conditions
	p.deploymentObserved = dep.Status.ObservedGeneration >= dep.Generation
	p.deploymentApplied = true
	if !p.deploymentObserved || !RolloutComplete(*ds, p.replicas()) {
		r.readPodTrouble(ctx, p)
	}
	return nil
}

// secretsChecksum covers every Secret the pods mount, so any change to them rolls the pods.
func secretsChecksum(secrets map[string]map[string][]byte) string {
	names := make([]string, 0, len(secrets))
	for n := range secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	datas := make([]map[string][]byte, 0, len(names)+1)
	datas = append(datas, map[string][]byte{"names": []byte(strings.Join(names, ","))})
	for _, n := range names {
		datas = append(datas, secrets[n])
	}
	return tenantpki.Checksum(datas...)
}
