package tenantcontrolplane_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/sleep"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// The manager's webhook Service, whose ready addresses hold sleeping tenants' connections (set
// in TestMain's settings; no EndpointSlice controller runs here, so the test writes its slice).
const (
	managerNamespace = "kamaji-system"
	managerService   = "kamaji-webhook-service"
)

func sleepCondition(tcp *kamajiv1alpha1.TenantControlPlane) metav1.Condition {
	if c := meta.FindStatusCondition(tcp.Status.Conditions, kamajiv1alpha1.ConditionSleeping); c != nil {
		return *c
	}
	return metav1.Condition{}
}

func waitSleepReason(t *testing.T, name, reason string) *kamajiv1alpha1.TenantControlPlane {
	t.Helper()
	var tcp *kamajiv1alpha1.TenantControlPlane
	eventually(t, name+"'s Sleeping condition to be "+reason, func(ctx context.Context) (bool, error) {
		tcp = getTCP(ctx, t, name)
		c := sleepCondition(tcp)
		return c.Reason == reason, fmt.Errorf("Sleeping condition %+v, status %q", c, versionStatus(tcp))
	})
	return tcp
}

func getService(ctx context.Context, t *testing.T, name string) *corev1.Service {
	t.Helper()
	s := &corev1.Service{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func getWakeSlice(ctx context.Context, name string) (*discoveryv1.EndpointSlice, error) {
	s := &discoveryv1.EndpointSlice{}
	return s, env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: sleep.WakeSliceName(name)}, s)
}

// poke makes a change the controller sees at once (the manager clock was moved: the pass it
// scheduled would come only in real time).
func poke(t *testing.T, name string) {
	t.Helper()
	updateTCP(t, name, func(tcp *kamajiv1alpha1.TenantControlPlane) {
		tcp.Labels = map[string]string{"test.kamaji.clastix.io/poke": fmt.Sprint(time.Now().UnixNano())}
	})
}

func TestSleepAndWake(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	if err := env.Client.Create(ctxT(t), dataStoreFor("sleep", etcd)); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: managerNamespace}}
	if err := env.Client.Create(ctxT(t), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	managerSlice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: managerService + "-x1", Namespace: managerNamespace, Labels: map[string]string{discoveryv1.LabelServiceName: managerService}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{Addresses: []string{"10.244.0.9"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To[int32](9443)}},
	}
	if err := env.Client.Create(ctxT(t), managerSlice); err != nil {
		t.Fatal(err)
	}
	optIn := func(tcp *kamajiv1alpha1.TenantControlPlane) {
		tcp.Annotations = map[string]string{kamajiv1alpha1.SleepAfterAnnotation: "30s"}
	}
	// The manager's clock moves forward here, less than the certificates' backdating (a minute):
	// the certificates issued meanwhile are valid at once for the real etcd. It moves back after.
	var moved time.Duration
	move := func(d time.Duration) {
		advanceClock(d)
		moved += d
	}
	t.Cleanup(func() { advanceClock(-moved) })
	const idle, busy = "sleepy", "busy"
	readyTCP(t, idle, "sleep", optIn)
	readyTCP(t, busy, "sleep", optIn)
	recorder := &sleep.Recorder{Client: env.Client, Now: now}

	t.Run("an opted-in apiserver reports its activity to the manager", func(t *testing.T) {
		args := apiServerArgs(ctxT(t), t, idle)
		for _, want := range []string{"--audit-policy-file=", "--audit-webhook-config-file=", "--audit-webhook-mode=batch"} {
			if argWithPrefix(args, want) == "" {
				t.Errorf("kube-apiserver lacks %s...: %v", want, args)
			}
		}
		cm := &corev1.ConfigMap{}
		if err := env.Client.Get(ctxT(t), client.ObjectKey{Namespace: "default", Name: idle + "-addon-files"}, cm); err != nil {
			t.Fatal(err)
		}
		var kubeconfig string
		for _, v := range cm.Data {
			if strings.Contains(v, "kind: Config") {
				kubeconfig = v
			}
		}
		if want := env.WebhookURL + sleep.ActivityPath + "default/" + idle; !strings.Contains(kubeconfig, want) {
			t.Errorf("the audit webhook kubeconfig does not lead to %s:\n%s", want, kubeconfig)
		}
		if c := sleepCondition(getTCP(ctxT(t), t, idle)); c.Status != metav1.ConditionFalse || c.Reason != sleep.ReasonAwake {
			t.Errorf("Sleeping condition %+v, want False/Awake", c)
		}
	})

	t.Run("an idle tenant sleeps; a tenant receiving requests does not", func(t *testing.T) {
		// The busy tenant's request is recorded at the time the clock is about to show: a pass
		// between the move and a later record would rightly put it to sleep.
		const idleTime = 45 * time.Second // 30 s idle, plus the lag of the record (7.5 s Lease interval, 5 s audit batch)
		ahead := &sleep.Recorder{Client: env.Client, Now: func() time.Time { return now().Add(idleTime) }}
		if err := ahead.Touch(ctxT(t), client.ObjectKey{Namespace: "default", Name: busy}, true); err != nil {
			t.Fatal(err)
		}
		move(idleTime)
		poke(t, idle)
		waitSleepReason(t, idle, sleep.ReasonIdle)
		if d := getDeployment(ctxT(t), t, idle); ptr.Deref(d.Spec.Replicas, -1) != 0 {
			t.Fatalf("the sleeping tenant's Deployment wants %d replicas, want 0", ptr.Deref(d.Spec.Replicas, -1))
		}
		rollOut(t, idle)
		tcp := waitStatus(t, idle, kamajiv1alpha1.VersionSleeping)
		if svc := getService(ctxT(t), t, idle); svc.Spec.Selector[sleep.SleepingSelectorLabel] != "true" {
			t.Errorf("the sleeping tenant's Service still selects its pods: %v", svc.Spec.Selector)
		}
		ws, err := getWakeSlice(ctxT(t), idle)
		if err != nil {
			t.Fatalf("the wake EndpointSlice: %v", err)
		}
		if ws.Labels[discoveryv1.LabelServiceName] != idle || len(ws.Ports) != 1 || *ws.Ports[0].Name != "kube-apiserver" || *ws.Ports[0].Port < 20000 ||
			len(ws.Endpoints) != 1 || ws.Endpoints[0].Addresses[0] != "10.244.0.7" {
			t.Errorf("the wake EndpointSlice does not lead the Service's apiserver port to the ready manager pod: labels %v, ports %+v, endpoints %+v", ws.Labels, ws.Ports, ws.Endpoints)
		}
		if !meta.IsStatusConditionTrue(tcp.Status.Conditions, kamajiv1alpha1.ConditionReady) {
			t.Errorf("a sleeping tenant is Ready, as one scaled to zero: %v", tcp.Status.Conditions)
		}

		b := getTCP(ctxT(t), t, busy)
		if c := sleepCondition(b); c.Reason != sleep.ReasonAwake || versionStatus(b) != kamajiv1alpha1.VersionReady {
			t.Errorf("the busy tenant: Sleeping %+v, status %s; want Awake and Ready", c, versionStatus(b))
		}
		if d := getDeployment(ctxT(t), t, busy); ptr.Deref(d.Spec.Replicas, -1) != 1 {
			t.Errorf("the busy tenant's Deployment wants %d replicas", ptr.Deref(d.Spec.Replicas, -1))
		}
		if svc := getService(ctxT(t), t, busy); len(svc.Spec.Selector) != 2 {
			t.Errorf("the busy tenant's Service does not select its pods: %v", svc.Spec.Selector)
		}
		if _, err := getWakeSlice(ctxT(t), busy); !apierrors.IsNotFound(err) {
			t.Errorf("the busy tenant has a wake EndpointSlice: %v", err)
		}
	})

	t.Run("a new manager pod is in the sleeping tenant's wake EndpointSlice", func(t *testing.T) {
		managerSlice.Endpoints[1].Conditions.Ready = ptr.To(true)
		if err := env.Client.Update(ctxT(t), managerSlice); err != nil {
			t.Fatal(err)
		}
		eventually(t, "both manager pods in the wake EndpointSlice", func(ctx context.Context) (bool, error) {
			ws, err := getWakeSlice(ctx, idle)
			return err == nil && len(ws.Endpoints) == 2, fmt.Errorf("%v %+v", err, ws.Endpoints)
		})
	})

	t.Run("a connection wakes it; the Service selects the pods once they are available", func(t *testing.T) {
		move(time.Second)
		// What the wake server does on each connection it holds.
		if err := recorder.Touch(ctxT(t), client.ObjectKey{Namespace: "default", Name: idle}, true); err != nil {
			t.Fatal(err)
		}
		waitSleepReason(t, idle, sleep.ReasonWaking)
		if d := getDeployment(ctxT(t), t, idle); ptr.Deref(d.Spec.Replicas, -1) != 1 {
			t.Fatalf("the waking tenant's Deployment wants %d replicas, want 1", ptr.Deref(d.Spec.Replicas, -1))
		}
		if svc := getService(ctxT(t), t, idle); svc.Spec.Selector[sleep.SleepingSelectorLabel] != "true" {
			t.Fatalf("the Service selects the pods before any is available (%v): connections would be refused", svc.Spec.Selector)
		}
		rollOut(t, idle)
		waitSleepReason(t, idle, sleep.ReasonAwake)
		waitStatus(t, idle, kamajiv1alpha1.VersionReady)
		if svc := getService(ctxT(t), t, idle); len(svc.Spec.Selector) != 2 || svc.Spec.Selector[sleep.SleepingSelectorLabel] != "" {
			t.Fatalf("the awake tenant's Service does not select its pods: %v", svc.Spec.Selector)
		}
		if _, err := getWakeSlice(ctxT(t), idle); err != nil {
			t.Fatalf("the wake EndpointSlice went before the Service's own slice has a ready apiserver: %v", err)
		}
		// The EndpointSlice controller's slice for the Service, with the ready apiserver.
		own := controllerSlice(idle, "10.244.0.30")
		if err := env.Client.Create(ctxT(t), own); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the wake EndpointSlice to go", func(ctx context.Context) (bool, error) {
			_, err := getWakeSlice(ctx, idle)
			return apierrors.IsNotFound(err), err
		})
	})

	t.Run("without the annotation the condition goes and nothing sleeps", func(t *testing.T) {
		updateTCP(t, busy, func(tcp *kamajiv1alpha1.TenantControlPlane) {
			delete(tcp.Annotations, kamajiv1alpha1.SleepAfterAnnotation)
		})
		eventually(t, "the Sleeping condition to go", func(ctx context.Context) (bool, error) {
			return sleepCondition(getTCP(ctx, t, busy)).Type == "", nil
		})
		eventually(t, "the audit flags to go", func(ctx context.Context) (bool, error) {
			return argWithPrefix(apiServerArgs(ctx, t, busy), "--audit-webhook-config-file=") == "", nil
		})
	})
}

// controllerSlice is an EndpointSlice as the EndpointSlice controller writes it for a TCP's
// Service, with one ready apiserver.
func controllerSlice(tcp, addr string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{GenerateName: tcp + "-", Namespace: "default", Labels: map[string]string{
			discoveryv1.LabelServiceName: tcp, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("kube-apiserver"), Port: ptr.To[int32](6443)}},
	}
}
