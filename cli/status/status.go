// Package status reads a TenantControlPlane's state the way the CLI reports it: the coarse
// version status, whether it is paused, and a one-line summary of what is failing. Pure
// functions of the object, so every verb and every output agrees.
package status

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/sleep"
)

// DefaultReplicas is the replica count the admission webhook defaults to.
const DefaultReplicas int32 = 2

// State is status.kubernetesResources.version.status, "Provisioning" when the core has not
// written it yet (its CRD default).
func State(tcp *kamajiv1alpha1.TenantControlPlane) kamajiv1alpha1.KubernetesVersionStatus {
	if s := tcp.Status.Kubernetes.Version.Status; s != nil && *s != "" {
		return *s
	}
	return kamajiv1alpha1.VersionProvisioning
}

// Paused tells whether kamaji.clastix.io/paused is on the TCP.
func Paused(tcp *kamajiv1alpha1.TenantControlPlane) bool {
	_, ok := tcp.Annotations[kamajiv1alpha1.PausedAnnotation]
	return ok
}

// Replicas is spec.controlPlane.deployment.replicas, defaulted.
func Replicas(tcp *kamajiv1alpha1.TenantControlPlane) int32 {
	return ptr.Deref(tcp.Spec.ControlPlane.Deployment.Replicas, DefaultReplicas)
}

// Observed tells whether the status describes the current spec (the core has reconciled the
// latest generation).
func Observed(tcp *kamajiv1alpha1.TenantControlPlane) bool {
	return tcp.Status.ObservedGeneration >= tcp.Generation
}

// Condition returns the condition of the given type, nil when absent.
func Condition(tcp *kamajiv1alpha1.TenantControlPlane, typ string) *metav1.Condition {
	for i := range tcp.Status.Conditions {
		if tcp.Status.Conditions[i].Type == typ {
			return &tcp.Status.Conditions[i]
		}
	}
	return nil
}

// Serving tells whether the tenant's apiserver runs and answers: Ready (or WriteLimited) with
// the Ready condition true. Sleeping is Ready for the core, not for a user of the tenant.
func Serving(tcp *kamajiv1alpha1.TenantControlPlane) bool {
	switch State(tcp) {
	case kamajiv1alpha1.VersionReady, kamajiv1alpha1.VersionWriteLimited:
	default:
		return false
	}
	c := Condition(tcp, kamajiv1alpha1.ConditionReady)
	return c == nil || c.Status == metav1.ConditionTrue
}

// Settled tells whether the TCP rests in a state the core reached on purpose: Ready,
// WriteLimited or Sleeping, for the current generation.
func Settled(tcp *kamajiv1alpha1.TenantControlPlane) bool {
	if !Observed(tcp) {
		return false
	}
	switch State(tcp) {
	case kamajiv1alpha1.VersionReady, kamajiv1alpha1.VersionWriteLimited, kamajiv1alpha1.VersionSleeping:
		c := Condition(tcp, kamajiv1alpha1.ConditionReady)
		return c == nil || c.Status == metav1.ConditionTrue
	}
	return false
}

// conditionOrder is the order of the reconcile steps, so the first failing condition listed is
// the one that stopped the pass.
var conditionOrder = []string{
	kamajiv1alpha1.ConditionDataStoreReady,
	kamajiv1alpha1.ConditionServiceReady,
	kamajiv1alpha1.ConditionCertificatesReady,
	kamajiv1alpha1.ConditionKubeconfigsReady,
	kamajiv1alpha1.ConditionAddonsReady,
	kamajiv1alpha1.ConditionControlPlaneAvailable,
	kamajiv1alpha1.ConditionTenantConfigured,
	kamajiv1alpha1.ConditionReady,
}

// waitingForControlPlane is the core's reason on the conditions of the steps inside the
// tenant (TenantConfigured, AddonsReady) while no control-plane replica is available: a
// consequence of ControlPlaneAvailable, listed after it so that the cause comes first.
const waitingForControlPlane = "WaitingForControlPlane"

func conditionRank(c metav1.Condition) int {
	if c.Reason == waitingForControlPlane {
		return rank(kamajiv1alpha1.ConditionTenantConfigured)
	}
	return rank(c.Type)
}

func rank(typ string) int {
	for i, t := range conditionOrder {
		if t == typ {
			return i
		}
	}
	return len(conditionOrder)
}

// Failing lists the conditions that report a problem or a change in progress, in step order:
// every False condition except the expected ones of a sleeping tenant (reason Sleeping) and
// Sleeping=False Awake, the normal state of a tenant that sleeps when idle (Sleeping is True
// when it sleeps: also not a problem). Ready is only listed when nothing more specific is
// False, since it summarises the others.
func Failing(tcp *kamajiv1alpha1.TenantControlPlane) []metav1.Condition {
	var out []metav1.Condition
	var ready *metav1.Condition
	for _, c := range tcp.Status.Conditions {
		if c.Status != metav1.ConditionFalse || c.Reason == "Sleeping" {
			continue
		}
		if c.Type == kamajiv1alpha1.ConditionSleeping && c.Reason == sleep.ReasonAwake {
			continue
		}
		if c.Type == kamajiv1alpha1.ConditionReady {
			ready = &c
			continue
		}
		out = append(out, c)
	}
	if len(out) == 0 && ready != nil {
		out = append(out, *ready)
	}
	// Stable insertion sort by step order; unknown types keep their order at the end.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && conditionRank(out[j]) < conditionRank(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// Describe is one condition on one line: "Type=Status Reason: message".
func Describe(c metav1.Condition) string {
	s := c.Type + "=" + string(c.Status)
	if c.Reason != "" {
		s += " " + c.Reason
	}
	if m := OneLine(c.Message); m != "" {
		s += ": " + m
	}
	return s
}

// Summary is the failing conditions on one line, "" when nothing fails.
func Summary(tcp *kamajiv1alpha1.TenantControlPlane) string {
	var parts []string
	for _, c := range Failing(tcp) {
		parts = append(parts, Describe(c))
	}
	return strings.Join(parts, "; ")
}

// Line is the state and, when something fails, why: "NotReady; DataStoreReady=False ...".
func Line(tcp *kamajiv1alpha1.TenantControlPlane) string {
	s := string(State(tcp))
	if Paused(tcp) {
		s += " (paused)"
	}
	if sum := Summary(tcp); sum != "" {
		s += "; " + sum
	}
	return s
}

// NotServing explains why a tenant's apiserver cannot be used now, nil when it can.
func NotServing(tcp *kamajiv1alpha1.TenantControlPlane) error {
	if Serving(tcp) {
		return nil
	}
	name := tcp.Namespace + "/" + tcp.Name
	switch st := State(tcp); st {
	case kamajiv1alpha1.VersionSleeping:
		return fmt.Errorf("TenantControlPlane %s is Sleeping (scaled to zero): wake it first with `kubectl kamaji wake %s -n %s`", name, tcp.Name, tcp.Namespace)
	default:
		why := Summary(tcp)
		if why == "" {
			why = "no condition says why yet"
		}
		return fmt.Errorf("TenantControlPlane %s is not Ready (status %s; %s)", name, st, why)
	}
}

// OneLine folds a multi-line message onto one line.
func OneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, " ")
}
