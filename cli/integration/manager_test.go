package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// standIn plays the manager for one TCP, every 100 ms, as the core's status step would: while
// not paused, a new generation is first reported as in progress (Upgrading when the version
// changes, NotReady otherwise), then as reached (Sleeping at zero replicas, Ready with the
// spec's version otherwise); a rotation request on the TCP or on its CA Secret is honoured
// (annotation removed, the certificate's checksum in the status changed, the CA rotation
// reported for one round). It records what it saw.
type standIn struct {
	name string
	mu   sync.Mutex
	seen map[string]bool
	// hold keeps an in-progress state for a few rounds, as a real rollout takes a while: the
	// CLI's progress line must show it.
	hold int
}

func startStandIn(t *testing.T, name string) *standIn {
	s := &standIn{name: name, seen: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := s.round(ctx); err != nil && ctx.Err() == nil {
				t.Logf("stand-in manager: %v", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func (s *standIn) saw(what string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[what]
}

func (s *standIn) note(what string) {
	s.mu.Lock()
	s.seen[what] = true
	s.mu.Unlock()
}

func (s *standIn) round(ctx context.Context) error {
	if s.hold > 0 {
		s.hold--
		return nil
	}
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: "default", Name: s.name}, tcp); err != nil {
		return client.IgnoreNotFound(err)
	}
	if _, paused := tcp.Annotations[kamajiv1alpha1.PausedAnnotation]; paused {
		s.note("paused")
		return nil
	}
	st := tcp.Status.DeepCopy()
	if _, rotate := tcp.Annotations[kamajiv1alpha1.RotateCertificatesAnnotation]; rotate {
		s.note("rotate")
		if err := removeAnnotation(ctx, tcp, kamajiv1alpha1.RotateCertificatesAnnotation); err != nil {
			return err
		}
		st.Certificates.APIServer.Checksum = fmt.Sprintf("api-%d", time.Now().UnixNano())
		st.Kubernetes.Version.Status = ptr.To(kamajiv1alpha1.VersionNotReady)
		s.hold = 2
		return s.write(ctx, tcp, st)
	}
	ca := &corev1.Secret{}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: "default", Name: s.name + "-ca"}, ca); err == nil {
		if _, rotate := ca.Annotations[kamajiv1alpha1.RotateCertificatesAnnotation]; rotate {
			s.note("rotate-ca")
			if err := removeAnnotation(ctx, ca, kamajiv1alpha1.RotateCertificatesAnnotation); err != nil {
				return err
			}
			st.Certificates.CA.Checksum = fmt.Sprintf("ca-%d", time.Now().UnixNano())
			st.Kubernetes.Version.Status = ptr.To(kamajiv1alpha1.VersionCertificateAuthorityRotating)
			s.hold = 2
			return s.write(ctx, tcp, st)
		}
	}
	replicas := ptr.Deref(tcp.Spec.ControlPlane.Deployment.Replicas, 2)
	cur := *st.Kubernetes.Version.Status
	switch {
	case st.ObservedGeneration < tcp.Generation && st.Kubernetes.Version.Version != tcp.Spec.Kubernetes.Version:
		s.note("upgrading")
		st.Kubernetes.Version.Status = ptr.To(kamajiv1alpha1.VersionUpgrading)
		setReady(st, "False", "Upgrading", "rolling out "+tcp.Spec.Kubernetes.Version)
		s.hold = 2
	case st.ObservedGeneration < tcp.Generation && cur != kamajiv1alpha1.VersionNotReady:
		st.Kubernetes.Version.Status = ptr.To(kamajiv1alpha1.VersionNotReady)
		setReady(st, "False", "ControlPlaneNotAvailable", "rolling out")
		s.hold = 2
	default:
		st.Kubernetes.Version.Version = tcp.Spec.Kubernetes.Version
		st.Kubernetes.Deployment.Replicas, st.Kubernetes.Deployment.AvailableReplicas = replicas, replicas
		if replicas == 0 {
			st.Kubernetes.Version.Status = ptr.To(kamajiv1alpha1.VersionSleeping)
			setReady(st, "True", "Sleeping", "scaled to zero replicas")
		} else {
			st.Kubernetes.Version.Status = ptr.To(kamajiv1alpha1.VersionReady)
			setReady(st, "True", "Ready", fmt.Sprintf("%d/%d control plane replicas run %s", replicas, replicas, tcp.Spec.Kubernetes.Version))
		}
	}
	return s.write(ctx, tcp, st)
}

func setReady(st *kamajiv1alpha1.TenantControlPlaneStatus, status, reason, msg string) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == "Ready" {
			st.Conditions[i].Status = metav1.ConditionStatus(status)
			st.Conditions[i].Reason, st.Conditions[i].Message = reason, msg
		}
	}
}

func (s *standIn) write(ctx context.Context, tcp *kamajiv1alpha1.TenantControlPlane, st *kamajiv1alpha1.TenantControlPlaneStatus) error {
	st.ObservedGeneration = tcp.Generation
	if equality.Semantic.DeepEqual(*st, tcp.Status) {
		return nil
	}
	tcp.Status = *st
	return cl.Status().Update(ctx, tcp)
}

func removeAnnotation(ctx context.Context, obj client.Object, key string) error {
	body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{key: nil}}})
	return cl.Patch(ctx, obj, client.RawPatch(types.MergePatchType, body))
}
