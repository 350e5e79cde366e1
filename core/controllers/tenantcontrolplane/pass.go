package tenantcontrolplane

import (
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/controlplane"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/sleep"
	"github.com/openhcp/kamaji/core/tenant"
	"github.com/openhcp/kamaji/core/tenant/writeblock"
	"github.com/openhcp/kamaji/sdk/addon"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// pass carries one reconcile of one TCP through the steps: the object as read, the status being
// built (applied once, at the end), and what each step hands to the next.
type pass struct {
	tcp    *kamajiv1alpha1.TenantControlPlane
	status kamajiv1alpha1.TenantControlPlaneStatus
	now    time.Time

	dataStore *kamajiv1alpha1.DataStore
	dsConfig  datastore.Config
	conn      datastore.Connection
	// overrideServers are the --etcd-servers-overrides entries of the provisioned overrides.
	overrideServers []string
	// storageSecret holds the datastore client certificate (etcd) or the kine configuration.
	storageSecret string
	// secrets are the data of every Secret the control-plane pod mounts, by Secret name: their
	// checksum goes into the pod template so a changed certificate rolls the pods.
	secrets map[string]map[string][]byte

	// deploymentObserved: the Deployment controller has seen our latest template.
	deploymentObserved bool
	// deploymentApplied: the Deployment step succeeded in this pass.
	deploymentApplied bool
	// podTrouble: why a control-plane pod does not run, while the rollout is incomplete
	// (PodTrouble; empty: none known).
	podTrouble string
	// startWaiting: why the control plane waits to start (the start queue; empty: it does not).
	startWaiting string

	// rotations are the Secrets a rotation request on the TCP was passed on to in this pass, as
	// the patch answered (the cache may not show the request yet); an honoured one is removed.
	rotations map[string]*corev1.Secret

	service  *corev1.Service
	endpoint string
	// ca is the tenant CA, for the kubeconfigs.
	ca *pki.KeyPair
	// caRotating is set while the CA is replaced and its dependents reissued.
	caRotating bool
	// caCross is the cross-signed CA appended to serving certificates (empty: none);
	// caOverlapEnd when the previous CA stops being trusted (zero: no overlap). What clients
	// trust is ca.TrustPEM().
	caCross      []byte
	caOverlapEnd time.Time
	// adminKubeconfig is the admin kubeconfig Secret's data, for the tenant client.
	adminKubeconfig map[string][]byte

	// renders are this pass's addon renders, by addon name (enabled addons only).
	renders map[string]addon.RenderResult
	// additions are what the addons add to the control-plane pod.
	additions controlplane.PodAdditions
	// addonFiles are the addons' kube-apiserver files, by key of the addon-files ConfigMap.
	addonFiles map[string][]byte
	// addonPorts are the addons' Service ports, by addon.
	addonPorts map[string][]corev1.ServicePort

	// sleep is this pass's sleep decision (see stepSleep); its zero value: the TCP does not
	// sleep.
	sleep sleepState
	// requeueAfter asks for the next pass within this long at the latest (0: no such need).
	requeueAfter time.Duration

	// tenant reaches the tenant apiserver (tenant phase only).
	tenant *tenant.Client
	// bootstrapTokenSum is the checksum of the bootstrap-token RBAC, for the phase's status.
	bootstrapTokenSum string
}

func (p *pass) setCondition(condType string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&p.status.Conditions, metav1.Condition{
		Type: condType, Status: status, Reason: reason, Message: message,
		ObservedGeneration: p.tcp.Generation, LastTransitionTime: metav1.NewTime(p.now),
	})
}

// sleepState is what stepSleep decided for the pass.
type sleepState struct {
	// after is the sleep-after annotation (0: absent or invalid).
	after time.Duration
	// phase is "" when sleep is not in play.
	phase sleep.Phase
	// activity is where the apiserver posts its audit events (set when after > 0 and the
	// manager's webhook is known).
	activity *writeblock.Webhook
	// wakeAddresses are the ready manager pods' addresses, read once per pass by canSleep.
	wakeAddresses []string
}

// replicas is the number of control-plane replicas the pass wants: the spec's (2 by default),
// none while the TCP sleeps.
func (p *pass) replicas() int32 {
	if p.sleep.phase == sleep.Asleep {
		return 0
	}
	return ptr.Deref(p.tcp.Spec.ControlPlane.Deployment.Replicas, 2)
}

// requeue asks for the next pass within d at the latest.
func (p *pass) requeue(d time.Duration) {
	if d > 0 && (p.requeueAfter == 0 || d < p.requeueAfter) {
		p.requeueAfter = d
	}
}

func (p *pass) addSecret(name string, data map[string][]byte) {
	if p.secrets == nil {
		p.secrets = map[string]map[string][]byte{}
	}
	p.secrets[name] = data
}

// stepError stops the pass: it names the condition to set False, a machine-readable reason,
// and, when retrying sooner is pointless, how long to wait.
type stepError struct {
	condition  string
	reason     string
	err        error
	retryAfter time.Duration
}

func (e *stepError) Error() string { return e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func fail(condition, reason string, err error) *stepError {
	return &stepError{condition: condition, reason: reason, err: err}
}

func failf(condition, reason, format string, args ...any) *stepError {
	return fail(condition, reason, fmt.Errorf(format, args...))
}

func asStepError(err error) (*stepError, bool) {
	var se *stepError
	ok := errors.As(err, &se)
	return se, ok
}
