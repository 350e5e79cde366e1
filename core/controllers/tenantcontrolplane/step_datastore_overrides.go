package tenantcontrolplane

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// stepDataStoreOverrides provisions the tenant on each DataStore of spec.dataStoreOverrides
// with its own identity there: the same schema (kube-apiserver has one --etcd-prefix) and the
// same user (it has one etcd client certificate, so every override DataStore must trust the
// main DataStore's CA). Each slice is recorded in the status before it is first provisioned.
func stepDataStoreOverrides(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	p.overrideServers = nil
	if len(p.tcp.Spec.DataStoreOverrides) == 0 {
		return nil
	}
	if p.conn.Etcd == nil {
		return failf(cond, ReasonUnsupportedConnection,
			"spec.dataStoreOverrides need an etcd main DataStore (kube-apiserver's --etcd-servers-overrides share its etcd client certificate); DataStore %s uses %s", p.dataStore.Name, p.dataStore.Spec.Driver)
	}
	tenant := Tenant(p.tcp)
	for _, o := range p.tcp.Spec.DataStoreOverrides {
		ds, cfg, err := r.dataStoreConfig(ctx, cond, o.DataStore)
		if err != nil {
			return err
		}
		if !sameCA(cfg.CACert, p.dsConfig.CACert) {
			return failf(cond, ReasonDataStoreInvalid,
				"spec.dataStoreOverrides: DataStore %s has another CA than DataStore %s: the apiserver's one etcd client certificate, signed by %s's CA, cannot authenticate to it",
				ds.Name, p.dataStore.Name, p.dataStore.Name)
		}
		newSlice := !slices.ContainsFunc(p.status.Storage.Overrides, func(s kamajiv1alpha1.StorageOverrideStatus) bool { return s.DataStoreName == ds.Name })
		// As for the main slice: not called again at rest for the same inputs (ensuredSlices),
		// and the plugin looked up before a new slice is recorded.
		key, role, sum := client.ObjectKeyFromObject(p.tcp), "override/"+ds.Name, ensureInputs(p.tcp, ds, cfg, tenant)
		conn, cached := r.ensured.lookup(key, role, sum, p.now)
		var plugin *datastore.Client
		if newSlice || !cached {
			var err error
			if plugin, _, err = r.Plugins.DataStore(ctx, ds.Spec.Driver); err != nil {
				return pluginFailure(cond, err)
			}
		}
		if newSlice {
			p.status.Storage.Overrides = append(p.status.Storage.Overrides, kamajiv1alpha1.StorageOverrideStatus{DataStoreName: ds.Name, Schema: tenant.Schema, User: tenant.Username})
			if err := r.recordStatus(ctx, p); err != nil {
				return fail(cond, ReasonProvisioningFailed, fmt.Errorf("recording the override slice before provisioning it: %w", err))
			}
		}
		if newSlice || !cached {
			cctx, cancel := context.WithTimeout(ctx, r.pluginCallTimeout())
			var err error
			conn, err = plugin.EnsureTenant(cctx, cfg, tenant)
			cancel()
			if err != nil {
				return provisioningFailure(cond, ds, err)
			}
			r.ensured.remember(key, role, sum, conn, p.now, r.Options.DataStoreVerifyInterval)
		}
		switch {
		case conn.Etcd == nil:
			return failf(cond, ReasonUnsupportedConnection, "spec.dataStoreOverrides: DataStore %s does not answer with an etcd connection", ds.Name)
		case conn.Etcd.Prefix != p.conn.Etcd.Prefix:
			return failf(cond, ReasonUnsupportedConnection, "spec.dataStoreOverrides: DataStore %s gives the prefix %q, the main DataStore %q; kube-apiserver has one prefix", ds.Name, conn.Etcd.Prefix, p.conn.Etcd.Prefix)
		case conn.Etcd.ClientCertificate.CommonName != p.conn.Etcd.ClientCertificate.CommonName:
			return failf(cond, ReasonUnsupportedConnection, "spec.dataStoreOverrides: DataStore %s wants the client certificate CN %q, the main DataStore %q; kube-apiserver has one certificate", ds.Name, conn.Etcd.ClientCertificate.CommonName, p.conn.Etcd.ClientCertificate.CommonName)
		}
		p.overrideServers = append(p.overrideServers, overrideResource(o.Resource)+"#"+strings.Join(conn.Etcd.Servers, ";"))
	}
	p.setCondition(cond, metav1.ConditionTrue, ReasonDataStoreReady,
		fmt.Sprintf("provisioned %q for user %q on DataStore %s and %d override DataStore(s)", tenant.Schema, tenant.Username, p.dataStore.Name, len(p.tcp.Spec.DataStoreOverrides)))
	return nil
}

// overrideResource is the group/resource form --etcd-servers-overrides wants ("/events" for
// the core group).
func overrideResource(resource string) string {
	resource = strings.TrimPrefix(resource, "/")
	if !strings.Contains(resource, "/") {
		resource = "/" + resource
	}
	return resource
}

func sameCA(a, b []byte) bool { return bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b)) }
