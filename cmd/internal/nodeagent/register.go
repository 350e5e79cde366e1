package nodeagent

import (
	"context"
	"fmt"
	"runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// Heartbeat periods, as the kubelet's defaults: the Lease is what the node lifecycle controller
// watches; the Ready condition's heartbeat only needs to move now and then.
const (
	LeaseDurationSeconds = 40
	LeaseRenewInterval   = 10 * time.Second
	StatusInterval       = 60 * time.Second
	readyMessage         = "kamaji node agent is posting ready status"
)

// NodeParams is what the agent reports about itself.
type NodeParams struct {
	Name           string
	IP             string
	Port           int32  // kubelet API port, in status.daemonEndpoints
	KubeletVersion string // the apiserver's version: the agent stands in for a kubelet of it
}

// newNode is the Node the agent registers, with the well-known labels a kubelet sets itself
// (NodeRestriction lets a node set these and no node-restriction.kubernetes.io ones).
func newNode(p NodeParams) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name,
			Labels: map[string]string{
				corev1.LabelHostname:   p.Name,
				corev1.LabelOSStable:   "linux",
				corev1.LabelArchStable: runtime.GOARCH,
			},
		},
	}
}

// setNodeStatus writes the status a healthy kubelet posts. The Ready condition's transition time
// only moves when it turns Ready, so that the node does not look like it flapped on each heartbeat.
func setNodeStatus(n *corev1.Node, p NodeParams, now time.Time) {
	s := &n.Status
	s.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: p.IP},
		{Type: corev1.NodeHostName, Address: p.Name},
	}
	s.DaemonEndpoints.KubeletEndpoint.Port = p.Port
	s.NodeInfo.KubeletVersion = p.KubeletVersion
	s.NodeInfo.OperatingSystem = "linux"
	s.NodeInfo.Architecture = runtime.GOARCH
	resources := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("2"),
		corev1.ResourceMemory: resource.MustParse("2Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	s.Capacity = resources
	s.Allocatable = resources.DeepCopy()
	setReady(n, now)
}

// setReady refreshes the Ready condition's heartbeat, adding it or turning it True if needed.
func setReady(n *corev1.Node, now time.Time) {
	t := metav1.NewTime(now)
	for i := range n.Status.Conditions {
		c := &n.Status.Conditions[i]
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status != corev1.ConditionTrue {
			c.LastTransitionTime = t
		}
		c.Status, c.Reason, c.Message, c.LastHeartbeatTime = corev1.ConditionTrue, "KubeletReady", readyMessage, t
		return
	}
	n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{
		Type:               corev1.NodeReady,
		Status:             corev1.ConditionTrue,
		Reason:             "KubeletReady",
		Message:            readyMessage,
		LastHeartbeatTime:  t,
		LastTransitionTime: t,
	})
}

// RegisterNode creates the Node (keeping one that already exists, as a restarted kubelet does)
// and posts its status. It returns the Node as stored, whose UID the Lease's owner needs.
func RegisterNode(ctx context.Context, cs kubernetes.Interface, p NodeParams) (*corev1.Node, error) {
	nodes := cs.CoreV1().Nodes()
	if _, err := nodes.Create(ctx, newNode(p), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("register node %s: %v", p.Name, err)
	}
	var out *corev1.Node
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := nodes.Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		setNodeStatus(n, p, time.Now())
		out, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update status of node %s: %v", p.Name, err)
	}
	return out, nil
}

// heartbeatStatus moves the Ready condition's heartbeat forward.
func heartbeatStatus(ctx context.Context, cs kubernetes.Interface, name string) error {
	nodes := cs.CoreV1().Nodes()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		setReady(n, time.Now())
		_, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
}

// newLease is the node's Lease as the kubelet makes it: owned by the Node, so that deleting the
// Node lets the garbage collector remove the Lease.
func newLease(node *corev1.Node, now time.Time) *coordinationv1.Lease {
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name:      node.Name,
			Namespace: corev1.NamespaceNodeLease,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1",
				Kind:       "Node",
				Name:       node.Name,
				UID:        node.UID,
			}},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(node.Name)},
	}
	renewLeaseSpec(l, now)
	return l
}

func renewLeaseSpec(l *coordinationv1.Lease, now time.Time) {
	l.Spec.LeaseDurationSeconds = ptr.To[int32](LeaseDurationSeconds)
	l.Spec.RenewTime = &metav1.MicroTime{Time: now}
}

// renewLease creates the node's Lease or moves its renew time to now.
func renewLease(ctx context.Context, cs kubernetes.Interface, node *corev1.Node) error {
	leases := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := leases.Get(ctx, node.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = leases.Create(ctx, newLease(node, time.Now()), metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		if len(l.OwnerReferences) == 0 {
			l.OwnerReferences = newLease(node, time.Now()).OwnerReferences
		}
		renewLeaseSpec(l, time.Now())
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		return err
	})
}

// keepAlive renews the Lease and the Ready heartbeat until ctx ends. A failed round is reported
// and retried at the next tick: an apiserver restart must not kill the node.
func keepAlive(ctx context.Context, cs kubernetes.Interface, node *corev1.Node, logf func(string, ...any)) {
	if err := renewLease(ctx, cs, node); err != nil && ctx.Err() == nil {
		logf("lease: %v", err)
	}
	lease := time.NewTicker(LeaseRenewInterval)
	defer lease.Stop()
	status := time.NewTicker(StatusInterval)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			if err := renewLease(ctx, cs, node); err != nil && ctx.Err() == nil {
				logf("lease: %v", err)
			}
		case <-status.C:
			if err := heartbeatStatus(ctx, cs, node.Name); err != nil && ctx.Err() == nil {
				logf("node status: %v", err)
			}
		}
	}
}
