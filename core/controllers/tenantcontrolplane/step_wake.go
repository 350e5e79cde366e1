package tenantcontrolplane

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/exposure"
	"github.com/openhcp/kamaji/core/sleep"
)

// wakeSliceRecheck: after the selector is back, how soon to look again for the Service's own
// EndpointSlice (the EndpointSlice controller writes it within a second or two).
const wakeSliceRecheck = time.Second

// stepWake runs after the Deployment step. A waking TCP whose pods are available is awake: its
// Service selects them again. The wake EndpointSlice of an awake TCP goes once the Service's
// own EndpointSlice leads to a ready apiserver, not before: in between a connection would find
// no destination.
func stepWake(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionSleeping
	if p.sleep.phase == sleep.Waking && p.deploymentObserved && RolloutComplete(p.status.Kubernetes.Deployment, p.replicas()) {
		p.sleep.phase = sleep.Awake
		if p.sleep.after > 0 {
			p.setCondition(cond, metav1.ConditionFalse, sleep.ReasonAwake, awakeMessage(p.sleep.after))
		} else {
			p.setCondition(cond, metav1.ConditionFalse, sleep.ReasonAwake, "woken for good: the annotation "+kamajiv1alpha1.SleepAfterAnnotation+" is gone")
		}
		if err := applyService(ctx, r, p); err != nil {
			return fail(kamajiv1alpha1.ConditionServiceReady, ReasonServiceFailed, err)
		}
	}
	if p.sleep.phase == sleep.Asleep || p.sleep.phase == sleep.Waking {
		return nil
	}
	cur := &discoveryv1.EndpointSlice{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.tcp.Namespace, Name: sleep.WakeSliceName(p.tcp.Name)}, cur)
	switch {
	case apierrors.IsNotFound(err):
		r.wakePorts.release(client.ObjectKeyFromObject(p.tcp))
		return nil
	case err != nil:
		return fail(cond, sleep.ReasonUnavailable, err)
	}
	ready, err := r.serviceHasReadyEndpoint(ctx, p)
	if err != nil {
		return fail(cond, sleep.ReasonUnavailable, err)
	}
	if !ready {
		p.requeue(wakeSliceRecheck)
		return nil
	}
	if err := apply.Delete(ctx, r.Client, cur); err != nil {
		return fail(cond, sleep.ReasonUnavailable, fmt.Errorf("removing the wake EndpointSlice: %w", err))
	}
	r.wakePorts.release(client.ObjectKeyFromObject(p.tcp))
	return nil
}

// serviceHasReadyEndpoint tells whether the EndpointSlice controller publishes a ready
// apiserver for the TCP's Service (read from the API: those slices are not cached).
func (r *Reconciler) serviceHasReadyEndpoint(ctx context.Context, p *pass) (bool, error) {
	reader := client.Reader(r.Client)
	if r.APIReader != nil {
		reader = r.APIReader
	}
	var list discoveryv1.EndpointSliceList
	if err := reader.List(ctx, &list, client.InNamespace(p.tcp.Namespace), client.MatchingLabels{
		discoveryv1.LabelServiceName: exposure.ServiceName(p.tcp), discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io",
	}); err != nil {
		return false, err
	}
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			if ptr.Deref(e.Conditions.Ready, false) {
				return true, nil
			}
		}
	}
	return false, nil
}

// wakeAddresses are the addresses of the ready manager pods, from the EndpointSlices of the
// manager's webhook Service (cached).
func (r *Reconciler) wakeAddresses(ctx context.Context) ([]string, error) {
	svc := r.Options.WakeService
	if svc.Name == "" || svc.Namespace == "" {
		return nil, errors.New("the manager does not know its own Service (settings webhook-service-name and the pod namespace) to which a sleeping tenant's connections go")
	}
	var list discoveryv1.EndpointSliceList
	if err := r.Client.List(ctx, &list, client.InNamespace(svc.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name}); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range list.Items {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for _, e := range s.Endpoints {
			if !ptr.Deref(e.Conditions.Ready, true) || ptr.Deref(e.Conditions.Terminating, false) {
				continue
			}
			for _, a := range e.Addresses {
				if !seen[a] {
					seen[a] = true
					out = append(out, a)
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// ensureWakeSlice declares the wake EndpointSlice: the TCP's Service leads to the manager pods,
// on the TCP's wake port, for its apiserver port only (the konnectivity agents' port gets no
// destination while the TCP sleeps).
func (r *Reconciler) ensureWakeSlice(ctx context.Context, p *pass) error {
	addrs := p.sleep.wakeAddresses // canSleep read them, unless it stopped before
	if addrs == nil {
		var err error
		if addrs, err = r.wakeAddresses(ctx); err != nil {
			return err
		}
	}
	base, count := r.Options.WakePortBase, r.Options.WakePortCount
	if base == 0 {
		base = DefaultWakePortBase
	}
	if count == 0 {
		count = DefaultWakePortCount
	}
	port, err := r.wakePorts.get(ctx, r.Client, client.ObjectKeyFromObject(p.tcp), base, count)
	if err != nil {
		return err
	}
	want := wakeSlice(p.tcp, port, addrs)
	owned(p.tcp, want)
	cur := &discoveryv1.EndpointSlice{}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), cur); err == nil &&
		equality.Semantic.DeepEqual(cur.Endpoints, want.Endpoints) && equality.Semantic.DeepEqual(cur.Ports, want.Ports) {
		return nil
	}
	return apply.Apply(ctx, r.Client, want)
}

// wakeSlice builds the wake EndpointSlice of a TCP.
func wakeSlice(tcp *kamajiv1alpha1.TenantControlPlane, port int32, addrs []string) *discoveryv1.EndpointSlice {
	labels := exposure.Labels(tcp)
	labels[discoveryv1.LabelServiceName] = exposure.ServiceName(tcp)
	labels[discoveryv1.LabelManagedBy] = "kamaji.clastix.io"
	labels[sleep.WakeLabel] = tcp.Name
	s := &discoveryv1.EndpointSlice{
		TypeMeta:    metav1.TypeMeta{APIVersion: discoveryv1.SchemeGroupVersion.String(), Kind: "EndpointSlice"},
		ObjectMeta:  metav1.ObjectMeta{Name: sleep.WakeSliceName(tcp.Name), Namespace: tcp.Namespace, Labels: labels},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{
			Name: ptr.To(exposure.APIServerPortName), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP),
		}},
	}
	for _, a := range addrs {
		if strings.Contains(a, ":") {
			continue
		}
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	return s
}
