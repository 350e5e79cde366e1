package tenantcontrolplane_test

// A datastore outage after the tenant was Ready: the DataStore's etcd is unreachable (its
// endpoint points at a closed port), so EnsureTenant fails on every pass. What does not need
// the datastore still converges: a spec change reaches the Deployment, a rotation request
// reissues the certificates and kubeconfigs; DataStoreReady alone says what failed.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	dscontroller "github.com/openhcp/kamaji/core/controllers/datastore"
	tcpcontroller "github.com/openhcp/kamaji/core/controllers/tenantcontrolplane"
	"github.com/openhcp/kamaji/sdk/testkit"
)

func setEndpoints(t *testing.T, dataStore string, endpoints []string) {
	t.Helper()
	updateDataStore(t, dataStore, func(ds *kamajiv1alpha1.DataStore) { ds.Spec.Endpoints = endpoints })
}

func apiServerArgs(ctx context.Context, t *testing.T, name string) []string {
	c := getDeployment(ctx, t, name).Spec.Template.Spec.Containers[0]
	return append(slices.Clone(c.Command), c.Args...)
}

func argWithPrefix(args []string, prefix string) string {
	for _, a := range args {
		if strings.HasPrefix(a, prefix) {
			return a
		}
	}
	return ""
}

func TestDataStoreOutage(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	if err := env.Client.Create(ctxT(t), dataStoreFor("outage", etcd)); err != nil {
		t.Fatal(err)
	}
	const name = "weathered"
	readyTCP(t, name, "outage", nil)
	before := apiServerArgs(ctxT(t), t, name)
	servers := argWithPrefix(before, "--etcd-servers=")
	if servers == "" {
		t.Fatalf("no --etcd-servers in %v", before)
	}

	setEndpoints(t, "outage", []string{"127.0.0.1:1"})
	// The manager has seen the change once the DataStore controller reports it unreachable.
	eventually(t, "the DataStore to be unreachable", func(ctx context.Context) (bool, error) {
		ds := &kamajiv1alpha1.DataStore{}
		if err := env.Client.Get(ctx, client.ObjectKey{Name: "outage"}, ds); err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(ds.Status.Conditions, dscontroller.ConditionConfigValid)
		return c != nil && c.Reason == dscontroller.ReasonUnreachable, fmt.Errorf("%+v", c)
	})

	t.Run("a spec change reaches the Deployment, and DataStoreReady alone names the failure", func(t *testing.T) {
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Spec.ControlPlane.Deployment.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{APIServer: []string{"--audit-log-maxage=9"}}
		})
		eventually(t, "DataStoreReady=False naming the DataStore", func(ctx context.Context) (bool, error) {
			c := dataStoreCondition(ctx, t, name)
			return c != nil && c.Status == metav1.ConditionFalse && c.Reason == tcpcontroller.ReasonProvisioningFailed && strings.Contains(c.Message, "DataStore outage"), fmt.Errorf("%+v", c)
		})
		eventually(t, "the extra argument in the Deployment", func(ctx context.Context) (bool, error) {
			return slices.Contains(apiServerArgs(ctx, t, name), "--audit-log-maxage=9"), nil
		})
		args := apiServerArgs(ctxT(t), t, name)
		if got := argWithPrefix(args, "--etcd-servers="); got != servers {
			t.Errorf("the Deployment's datastore changed during the outage: %s, was %s", got, servers)
		}
		for _, a := range []string{"--etcd-prefix=", "--etcd-certfile=", "--etcd-keyfile=", "--etcd-cafile="} {
			if argWithPrefix(args, a) != argWithPrefix(before, a) {
				t.Errorf("%s changed: %s, was %s", a, argWithPrefix(args, a), argWithPrefix(before, a))
			}
		}
		rollOut(t, name)
		eventually(t, "the other conditions True", func(ctx context.Context) (bool, error) {
			conds := getTCP(ctx, t, name).Status.Conditions
			for _, c := range []string{kamajiv1alpha1.ConditionCertificatesReady, kamajiv1alpha1.ConditionKubeconfigsReady, kamajiv1alpha1.ConditionServiceReady, kamajiv1alpha1.ConditionControlPlaneAvailable} {
				if !meta.IsStatusConditionTrue(conds, c) {
					return false, fmt.Errorf("%s is not True: %v", c, conds)
				}
			}
			return true, nil
		})
		if c := meta.FindStatusCondition(getTCP(ctxT(t), t, name).Status.Conditions, kamajiv1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "DataStore outage") {
			t.Errorf("Ready %+v, want False naming the DataStore", c)
		}
	})

	t.Run("a rotation request reissues the certificates and kubeconfigs; the datastore's follows when it is back", func(t *testing.T) {
		log := watchChanges(t, name)
		log.caughtUp(t)
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Annotations = map[string]string{kamajiv1alpha1.RotateCertificatesAnnotation: "now"}
		})
		leaves := []string{
			name + "-api-server-certificate", name + "-api-server-kubelet-client-certificate", name + "-front-proxy-client-certificate",
			name + "-admin-kubeconfig", name + "-controller-manager-kubeconfig", name + "-scheduler-kubeconfig",
		}
		eventually(t, "the leaves to be reissued during the outage", func(ctx context.Context) (bool, error) {
			if rotationPending(getTCP(ctx, t, name)) {
				return false, fmt.Errorf("the TCP still has the request")
			}
			for _, s := range leaves {
				if log.changes(s) == 0 {
					return false, fmt.Errorf("%s not reissued yet", s)
				}
			}
			return log.rolls() > 0, fmt.Errorf("the pods did not roll yet")
		})
		ds := name + "-datastore-certificate"
		if !rotationPending(getSecret(ctxT(t), t, ds)) || log.changes(ds) != 0 {
			t.Errorf("the datastore client certificate: changed %d times, request pending %v; want kept, with the request, until the datastore answers", log.changes(ds), rotationPending(getSecret(ctxT(t), t, ds)))
		}
		log.caughtUp(t)
		log.expectChanges(t, 1, leaves...)

		setEndpoints(t, "outage", etcd.Endpoints)
		// An event brings the TCP back now rather than after its error backoff.
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) { x.Labels = map[string]string{"test/touch": "1"} })
		eventually(t, "DataStoreReady=True and the datastore client certificate reissued", func(ctx context.Context) (bool, error) {
			c := dataStoreCondition(ctx, t, name)
			return c != nil && c.Status == metav1.ConditionTrue && log.changes(ds) == 1 && !rotationPending(getSecret(ctx, t, ds)), fmt.Errorf("%+v", c)
		})
		newPasser(t, now).settled(t, name, log)
		log.expectChanges(t, 2, append(leaves, ds)...)
	})
}
