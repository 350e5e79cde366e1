package local_test

// Datastore migrations and backups of a running tenant on the local plane (`--datastores all`):
// a tenant holding 1,000 objects (ConfigMaps, Secrets, a CRD and its custom resources) moves
// etcd -> etcd-2 (with `kubectl kamaji migrate`) -> PostgreSQL -> MySQL -> NATS -> etcd. After
// each move every object is equal by content, a client write during the freeze was refused with
// the freeze's message while node lease updates passed, the TCP is Ready and the source slice is
// gone. Then the failures: a target that becomes unreachable half-way rolls back with nothing
// lost; the manager killed mid-migration converges once it runs again. Last, a backup restored
// into a new TCP on another driver gives the same objects.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	tcpcontroller "github.com/openhcp/kamaji/core/controllers/tenantcontrolplane"

	"github.com/openhcp/kamaji/cmd/internal/local"
)

const (
	migrantConfigMaps = 600
	migrantSecrets    = 300
	migrantWidgets    = 100 // custom resources, with their CRD: 1,000 objects and a CRD in all
)

func testMigrations(t *testing.T, e *e2e) {
	const name = "migrant"
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	tcp := local.SampleTCP(name, "default") // on the plane's etcd DataStore "default"
	if err := e.cl.Create(ctx(t), tcp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.cl.Delete(context.Background(), &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}})
	})
	e.waitKineReady(t, name)
	e.writeKubeconfig(t, name)
	e.fillMigrant(t, name)
	want := e.tenantObjects(t, name)
	if n := len(want); n != migrantConfigMaps+migrantSecrets+migrantWidgets+1 {
		t.Fatalf("the tenant holds %d of our objects, want %d", n, migrantConfigMaps+migrantSecrets+migrantWidgets+1)
	}
	step(fmt.Sprintf("%s Ready on DataStore default with %d objects", name, len(want)))
	cli := e.kamajiCLI(t)

	t.Run("across every driver, nothing lost", func(t *testing.T) {
		for _, to := range []string{local.DataStoreEtcd2, local.DataStorePostgreSQL, local.DataStoreMySQL, local.DataStoreNATS, "default"} {
			from := e.tcp(t, name)
			source := sliceOf(from)
			var bucket string
			if source.ds == local.DataStoreNATS {
				bucket = e.kineSidecar(t, name).query.Get("bucket")
			}
			probe := e.startWriteProbe(t, name)
			moved := time.Now()
			if to == local.DataStoreEtcd2 {
				// The operator's way: the CLI waits with the phase and returns once Migrated.
				out := cli.ok(t, 6*time.Minute, "migrate", name, "--to", to)
				t.Logf("kubectl kamaji migrate %s --to %s:\n%s", name, to, out)
			} else {
				e.setDataStore(t, name, to)
			}
			msg := e.waitMigrated(t, name, to)
			p := probe.stop()
			step(fmt.Sprintf("%s -> %s in %.1fs: %s; probe: %s", source.ds, to, time.Since(moved).Seconds(), msg, p))
			if p.frozen == 0 {
				t.Errorf("no write in default was refused by the freeze while moving to %s (%s)", to, p)
			}
			if p.leaseRefused > 0 || p.leaseOK == 0 {
				t.Errorf("node lease updates while moving to %s: %s", to, p)
			}
			e.waitKineReady(t, name)
			if diff := objectsDiff(want, e.tenantObjects(t, name)); diff != "" {
				t.Fatalf("on %s the objects differ: %s", to, diff)
			}
			// Writes pass again once Migrated.
			e.kubectlT(t, name, "create", "configmap", "written-on-"+to)
			e.kubectlT(t, name, "delete", "configmap", "written-on-"+to)
			eventually(t, "the source slice on "+source.ds+" to be gone", func() error { return e.sliceGone(t, source, bucket) })
		}
	})

	t.Run("a target unreachable half-way rolls back, nothing lost", func(t *testing.T) {
		proxy := startCutProxy(t, net.JoinHostPort("10.244.0.1", "0"), pgServerAddr())
		pg := &kamajiv1alpha1.DataStore{}
		if err := e.cl.Get(ctx(t), client.ObjectKey{Name: local.DataStorePostgreSQL}, pg); err != nil {
			t.Fatal(err)
		}
		via := &kamajiv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Name: "pg-via-proxy"}, Spec: *pg.Spec.DeepCopy()}
		via.Spec.Endpoints = []string{proxy.addr}
		if err := e.cl.Create(ctx(t), via); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.cl.Delete(context.Background(), via) })
		e.patchAnnotation(t, name, kamajiv1alpha1.MigrationTimeoutAnnotation, "75s")
		defer e.patchAnnotation(t, name, kamajiv1alpha1.MigrationTimeoutAnnotation, "")
		e.setDataStore(t, name, via.Name)
		// Cut the target off once the migration has provisioned it, before the copy ends.
		phase := e.waitPhase(t, name, kamajiv1alpha1.MigrationFreezing, kamajiv1alpha1.MigrationCopying)
		proxy.cut()
		step("the target's connection cut in phase " + string(phase))
		var cur *kamajiv1alpha1.TenantControlPlane
		if err := wait.PollUntilContextTimeout(context.Background(), time.Second, 4*time.Minute, true, func(context.Context) (bool, error) {
			cur = e.tcp(t, name)
			m := cur.Status.Storage.Migration
			return m != nil && m.Phase == kamajiv1alpha1.MigrationFailed, nil
		}); err != nil {
			t.Fatalf("no rollback: %s", migrationState(cur))
		}
		c := meta.FindStatusCondition(cur.Status.Conditions, kamajiv1alpha1.ConditionDataStoreReady)
		if c == nil || c.Reason != "MigrationFailed" || cur.Status.Storage.DataStoreName != "default" {
			t.Fatalf("after the rollback: DataStore %s, condition %+v", cur.Status.Storage.DataStoreName, c)
		}
		step("rolled back: " + c.Message)
		proxy.restore() // so the partial target slice can be removed
		e.setDataStore(t, name, "default")
		eventually(t, "the failed migration to clear", func() error {
			if m := e.tcp(t, name).Status.Storage.Migration; m != nil {
				return fmt.Errorf("%s", migrationState(e.tcp(t, name)))
			}
			return nil
		})
		// The partial target slice the rollback could not reach goes once spec.dataStore moves on.
		src := sliceOf(cur)
		eventually(t, "the partial target slice to be removed", func() error {
			return e.sliceGone(t, sliceRef{local.DataStorePostgreSQL, src.schema, src.user}, "")
		})
		e.waitKineReady(t, name)
		if diff := objectsDiff(want, e.tenantObjects(t, name)); diff != "" {
			t.Fatalf("after the rollback the objects differ: %s", diff)
		}
		e.kubectlT(t, name, "create", "configmap", "written-after-rollback")
		e.kubectlT(t, name, "delete", "configmap", "written-after-rollback")
	})

	t.Run("the manager killed mid-migration converges", func(t *testing.T) {
		e.setDataStore(t, name, local.DataStoreEtcd2)
		phase := e.waitPhase(t, name, kamajiv1alpha1.MigrationFreezing, kamajiv1alpha1.MigrationCopying, kamajiv1alpha1.MigrationSwitching)
		e.killManager(t)
		step("manager killed in phase " + string(phase))
		if out, err := e.run(5*time.Minute, "local", "up", "--state-dir", e.state, "--bin-dir", filepath.Dir(e.kamaji), "--tenants", "0"); err != nil {
			t.Fatalf("kamaji local up (restarts the manager): %v\n%s", err, out)
		}
		msg := e.waitMigrated(t, name, local.DataStoreEtcd2)
		step("converged: " + msg)
		e.waitKineReady(t, name)
		if diff := objectsDiff(want, e.tenantObjects(t, name)); diff != "" {
			t.Fatalf("after the restart the objects differ: %s", diff)
		}
	})

	t.Run("a backup restored into a new TCP on another driver gives the same objects", func(t *testing.T) {
		const restored = "restored"
		archive := filepath.Join(t.TempDir(), "migrant.kbk")
		conf := []string{"--kubeconfig", filepath.Join(e.state, "admin.kubeconfig"), "--config", filepath.Join(e.state, "kamaji.yaml")}
		out, err := e.run(3*time.Minute, append([]string{"backup", "--tenant", "default/" + name, "--output", archive}, conf...)...)
		if err != nil {
			t.Fatalf("kamaji backup: %v\n%s", err, out)
		}
		step("backup: " + strings.TrimSpace(out))
		// The new tenant is created without a running control plane, so its slice stays empty.
		tcp := local.SampleTCP(restored, "default")
		tcp.Spec.DataStore = local.DataStorePostgreSQL
		tcp.Spec.ControlPlane.Deployment.Replicas = ptr.To[int32](0)
		if err := e.cl.Create(ctx(t), tcp); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = e.cl.Delete(context.Background(), &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: restored}})
		})
		eventually(t, restored+" to be provisioned", func() error {
			if e.tcp(t, restored).Status.Storage.DataStoreName != local.DataStorePostgreSQL {
				return fmt.Errorf("status.storage: %+v", e.tcp(t, restored).Status.Storage)
			}
			return nil
		})
		// Into a running tenant: refused, naming why.
		if out, err := e.run(3*time.Minute, append([]string{"restore", "--tenant", "default/" + name, "--input", archive}, conf...)...); err == nil || !strings.Contains(out, "runs its control plane") {
			t.Fatalf("restore into a running tenant: %v\n%s", err, out)
		}
		out, err = e.run(3*time.Minute, append([]string{"restore", "--tenant", "default/" + restored, "--input", archive}, conf...)...)
		if err != nil {
			t.Fatalf("kamaji restore: %v\n%s", err, out)
		}
		step("restore: " + strings.TrimSpace(out))
		e.patchTCP(t, restored, func(tcp *kamajiv1alpha1.TenantControlPlane) {
			tcp.Spec.ControlPlane.Deployment.Replicas = ptr.To[int32](1)
		})
		e.waitKineReady(t, restored)
		e.writeKubeconfig(t, restored)
		if diff := objectsDiff(want, e.tenantObjects(t, restored)); diff != "" {
			t.Fatalf("the restored tenant's objects differ: %s", diff)
		}
		// And the source tenant is untouched by its backup.
		if diff := objectsDiff(want, e.tenantObjects(t, name)); diff != "" {
			t.Fatalf("after the backup the source's objects differ: %s", diff)
		}
	})
}

// fillMigrant writes the 1,000 objects: a CRD and its custom resources, ConfigMaps, Secrets.
func (e *e2e) fillMigrant(t *testing.T, name string) {
	t.Helper()
	dir := t.TempDir()
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.e2e.kamaji.dev}
spec:
  group: e2e.kamaji.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}, colour: {type: string}}}
`
	write := func(file, content string) string {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	e.kubectlT(t, name, "create", "-f", write("crd.yaml", crd))
	e.kubectlT(t, name, "wait", "--for=condition=Established", "crd/widgets.e2e.kamaji.dev", "--timeout=60s")
	var b strings.Builder
	for i := range migrantConfigMaps {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%03d, namespace: default, labels: {e2e: migrant}}\ndata: {i: \"%d\", text: %q}\n", i, i, strings.Repeat("c", i))
	}
	for i := range migrantSecrets {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Secret\nmetadata: {name: secret-%03d, namespace: default, labels: {e2e: migrant}}\nstringData: {token: \"s3cr3t-%d\"}\n", i, i)
	}
	for i := range migrantWidgets {
		fmt.Fprintf(&b, "---\napiVersion: e2e.kamaji.dev/v1\nkind: Widget\nmetadata: {name: widget-%03d, namespace: default, labels: {e2e: migrant}}\nspec: {size: %d, colour: blue}\n", i, i)
	}
	e.kubectlT(t, name, "create", "-f", write("objects.yaml", b.String()))
}

// tenantObjects reads the test's objects (and the CRD) as JSON without their resource
// versions, which restart on a new datastore; everything else must be equal.
func (e *e2e) tenantObjects(t *testing.T, name string) map[string]string {
	t.Helper()
	out := e.kubectlT(t, name, "get", "configmaps,secrets,widgets.e2e.kamaji.dev", "-n", "default", "-l", "e2e=migrant", "-o", "json")
	crd := e.kubectlT(t, name, "get", "crd", "widgets.e2e.kamaji.dev", "-o", "json")
	var list struct{ Items []map[string]any }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(crd), &c); err != nil {
		t.Fatal(err)
	}
	delete(c, "status") // conditions are recomputed by each new apiserver
	objs := map[string]string{}
	for _, o := range append(list.Items, c) {
		md := o["metadata"].(map[string]any)
		delete(md, "resourceVersion")
		data, _ := json.Marshal(o)
		objs[fmt.Sprintf("%s/%s", o["kind"], md["name"])] = string(data)
	}
	return objs
}

func objectsDiff(want, got map[string]string) string {
	var missing, changed, extra []string
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case g != v:
			changed = append(changed, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(changed)+len(extra) == 0 {
		return ""
	}
	slices.Sort(missing)
	slices.Sort(changed)
	detail := ""
	if len(changed) > 0 {
		detail = fmt.Sprintf("; %s was %s, is %s", changed[0], want[changed[0]], got[changed[0]])
	}
	return fmt.Sprintf("%d missing %v, %d changed %v, %d extra %v%s", len(missing), head(missing), len(changed), head(changed), len(extra), head(extra), detail)
}

func head(s []string) []string {
	if len(s) > 5 {
		return s[:5]
	}
	return s
}

func (e *e2e) setDataStore(t *testing.T, name, to string) {
	t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := e.tcp(t, name)
		cur.Spec.DataStore = to
		return e.cl.Update(ctx(t), cur)
	}); err != nil {
		t.Fatal(err)
	}
}

func (e *e2e) patchAnnotation(t *testing.T, name, key, value string) {
	t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := e.tcp(t, name)
		if value == "" {
			delete(cur.Annotations, key)
		} else {
			if cur.Annotations == nil {
				cur.Annotations = map[string]string{}
			}
			cur.Annotations[key] = value
		}
		return e.cl.Update(ctx(t), cur)
	}); err != nil {
		t.Fatal(err)
	}
}

// waitMigrated waits until the TCP runs on to after a migration, and returns the condition's
// message; a rollback fails the test.
func (e *e2e) waitMigrated(t *testing.T, name, to string) string {
	t.Helper()
	var msg string
	var rolledBack error
	if err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 6*time.Minute, true, func(context.Context) (bool, error) {
		cur := e.tcp(t, name)
		m := cur.Status.Storage.Migration
		if m != nil && m.Phase == kamajiv1alpha1.MigrationFailed {
			rolledBack = fmt.Errorf("the migration to %s was rolled back: %s", to, m.Message)
			return false, rolledBack
		}
		c := meta.FindStatusCondition(cur.Status.Conditions, kamajiv1alpha1.ConditionDataStoreReady)
		if c != nil {
			msg = c.Message
		}
		return m == nil && cur.Status.Storage.DataStoreName == to && c != nil && c.Reason == "Migrated", nil
	}); err != nil {
		if rolledBack != nil {
			t.Fatal(rolledBack)
		}
		t.Fatalf("migrating to %s: %s (%s)", to, msg, migrationState(e.tcp(t, name)))
	}
	return msg
}

// waitPhase waits until the migration is in one of phases and returns it.
func (e *e2e) waitPhase(t *testing.T, name string, phases ...kamajiv1alpha1.MigrationPhase) kamajiv1alpha1.MigrationPhase {
	t.Helper()
	var got kamajiv1alpha1.MigrationPhase
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 3*time.Minute, true, func(context.Context) (bool, error) {
		if m := e.tcp(t, name).Status.Storage.Migration; m != nil && slices.Contains(phases, m.Phase) {
			got = m.Phase
			return true, nil
		}
		return false, nil
	}); err != nil {
		t.Fatalf("the migration never reached %v: %s", phases, migrationState(e.tcp(t, name)))
	}
	return got
}

// killManager kills the manager's process in its pod (SIGKILL: no clean-up of any kind); the
// process node restarts the container, as a kubelet would.
func (e *e2e) killManager(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(e.managerPID(t), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// kamajiCLI builds kubectl-kamaji and points it at the plane's admin kubeconfig.
func (e *e2e) kamajiCLI(t *testing.T) *kamajiCLI {
	t.Helper()
	bin := t.TempDir()
	goBuild(t, "", nil, "-o", filepath.Join(bin, "kubectl-kamaji"), "../../../cli/cmd/kubectl-kamaji")
	return &kamajiCLI{kubectl: e.kubectl, path: bin + string(os.PathListSeparator) + os.Getenv("PATH"), kubeconfig: filepath.Join(e.state, "admin.kubeconfig")}
}

// ---- the write probe ----

// writeProbe writes, every 100 ms, a ConfigMap in default (refused while frozen) and a node's
// Lease in kube-node-lease (always allowed) through the tenant's Service, as clients would.
type writeProbe struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	res    probeResult
}

type probeResult struct {
	writes, frozen, otherRefusals, unreachable int
	leaseOK, leaseRefused, leaseUnreachable    int
	firstOther                                 string
}

func (r probeResult) String() string {
	s := fmt.Sprintf("%d writes in default (%d refused by the freeze, %d refused otherwise, %d unreachable), lease updates %d passed, %d refused, %d unreachable",
		r.writes, r.frozen, r.otherRefusals, r.unreachable, r.leaseOK, r.leaseRefused, r.leaseUnreachable)
	if r.firstOther != "" {
		s += "; first other refusal: " + r.firstOther
	}
	return s
}

func (e *e2e) startWriteProbe(t *testing.T, name string) *writeProbe {
	t.Helper()
	cfg := e.tenantREST(t, name)
	cfg.Timeout = 5 * time.Second
	cs := kubernetes.NewForConfigOrDie(cfg)
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "e2e-probe-node", Namespace: corev1.NamespaceNodeLease},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("e2e-probe-node"), LeaseDurationSeconds: ptr.To[int32](40)}}
	if _, err := cs.CoordinationV1().Leases(lease.Namespace).Create(ctx(t), lease, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(context.Background())
	p := &writeProbe{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; c.Err() == nil; i++ {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("probe-%d-%d", time.Now().UnixNano(), i), Namespace: "default"}}
			_, err := cs.CoreV1().ConfigMaps("default").Create(c, cm, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			_, lerr := cs.CoordinationV1().Leases(lease.Namespace).Patch(c, lease.Name, "application/merge-patch+json",
				[]byte(fmt.Sprintf(`{"spec":{"renewTime":%q}}`, time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00"))), metav1.PatchOptions{})
			if c.Err() != nil {
				return
			}
			p.mu.Lock()
			p.res.writes++
			switch {
			case err == nil:
			case strings.Contains(err.Error(), tcpcontroller.Freeze.Message):
				p.res.frozen++
			case apierrors.IsForbidden(err) || apierrors.IsInvalid(err):
				p.res.otherRefusals++
				if p.res.firstOther == "" {
					p.res.firstOther = err.Error()
				}
			default:
				p.res.unreachable++
			}
			switch {
			case lerr == nil:
				p.res.leaseOK++
			case apierrors.IsForbidden(lerr) || apierrors.IsInvalid(lerr):
				p.res.leaseRefused++
			default:
				p.res.leaseUnreachable++
			}
			p.mu.Unlock()
			select {
			case <-c.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return p
}

func (p *writeProbe) stop() probeResult {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.res
}

// ---- slices ----

type sliceRef struct{ ds, schema, user string }

func sliceOf(tcp *kamajiv1alpha1.TenantControlPlane) sliceRef {
	return sliceRef{tcp.Status.Storage.DataStoreName, tcp.Spec.DataStoreSchema, tcp.Spec.DataStoreUsername}
}

// sliceGone returns nil once nothing of the slice is left on its backend.
func (e *e2e) sliceGone(t *testing.T, s sliceRef, natsBucket string) error {
	switch s.ds {
	case "default", local.DataStoreEtcd2:
		endpoint := "10.244.0.1:2379"
		if s.ds == local.DataStoreEtcd2 {
			endpoint = "10.244.0.1:2381"
		}
		resp, err := e.etcdAt(t, endpoint).Get(ctx(t), "/"+s.schema+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		if resp.Count > 0 {
			return fmt.Errorf("%d keys left under /%s/ on %s", resp.Count, s.schema, s.ds)
		}
	case local.DataStoreNATS:
		left, err := e.natsBuckets(t)
		if err != nil {
			return err
		}
		if slices.Contains(left, natsBucket) {
			return fmt.Errorf("bucket %s still there", natsBucket)
		}
	default:
		if left := serverLeftovers(t, []kineTenantNames{{s.ds, s.schema, s.user}}); len(left) > 0 {
			return fmt.Errorf("still on the server: %v", left)
		}
	}
	return nil
}

// etcdAt is a root client of one of the plane's multi-tenant etcds.
func (e *e2e) etcdAt(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	dir := filepath.Join(e.state, "pki", "datastore")
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "root.crt"), filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{"https://" + endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		TLS: &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func pgServerAddr() string { return envOr("KAMAJI_POSTGRES_ADDR", "127.0.0.1:5432") }

// ---- a proxy that can be cut ----

// cutProxy forwards TCP connections to a backend until cut: then it closes every connection
// and refuses new ones (the backend is unreachable), until restored.
type cutProxy struct {
	addr    string
	backend string
	mu      sync.Mutex
	cutOff  bool
	conns   []net.Conn
}

func startCutProxy(t *testing.T, listen, backend string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{addr: ln.Addr().String(), backend: backend}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.cutOff {
				p.mu.Unlock()
				c.Close()
				continue
			}
			b, err := net.DialTimeout("tcp", backend, 5*time.Second)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(b, c); b.Close() }()
			go func() { _, _ = io.Copy(c, b); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutOff = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutOff = false
}
