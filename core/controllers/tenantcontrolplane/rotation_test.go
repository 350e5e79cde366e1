package tenantcontrolplane_test

// Certificate rotation as a user asks for it: on the TCP, on one Secret, or by changing the
// DataStore's CA. What is counted is what the user sees: every change of a Secret's data and of
// the pod template's checksum, from a watch opened before the request, so "exactly once" is
// counted rather than guessed; passes of a reconciler of the test's own then show nothing more
// changes.

import (
	"context"
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	tcpcontroller "github.com/openhcp/kamaji/core/controllers/tenantcontrolplane"
	"github.com/openhcp/kamaji/core/controlplane"
	"github.com/openhcp/kamaji/core/datastores"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/pluginhost"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/tenantpki"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// changeLog holds, per Secret of one TCP, the successive checksums of its data, and the
// successive secrets checksums of its pod template; the first entry is the state when the
// watch opened.
type changeLog struct {
	tcp      string
	mu       sync.Mutex
	secrets  map[string][]string
	template []string
}

func appendChanged(seq []string, v string) []string {
	if len(seq) > 0 && seq[len(seq)-1] == v {
		return seq
	}
	return append(seq, v)
}

func (l *changeLog) secret(s *corev1.Secret) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.secrets[s.Name] = appendChanged(l.secrets[s.Name], tenantpki.Checksum(s.Data))
}

func (l *changeLog) deployment(d *appsv1.Deployment) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.template = appendChanged(l.template, d.Spec.Template.Annotations[controlplane.SecretsChecksumAnnotation])
}

// changes is how many times the Secret's data changed since the watch opened.
func (l *changeLog) changes(secret string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(len(l.secrets[secret])-1, 0)
}

// rolls is how many times the pod template's secrets checksum changed.
func (l *changeLog) rolls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(len(l.template)-1, 0)
}

// watchChanges opens the watches of the TCP's Secrets and Deployment; they end with the test.
func watchChanges(t *testing.T, tcp string) *changeLog {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := &changeLog{tcp: tcp, secrets: map[string][]string{}}
	sel := kamajiv1alpha1.NameLabel + "=" + tcp
	list, err := cs.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		l.secret(&list.Items[i])
	}
	sw, err := cs.CoreV1().Secrets("default").Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	deps, err := cs.AppsV1().Deployments("default").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + tcp})
	if err != nil || len(deps.Items) != 1 {
		t.Fatalf("the Deployment of %s: %v (%d found)", tcp, err, len(deps.Items))
	}
	l.deployment(&deps.Items[0])
	dw, err := cs.AppsV1().Deployments("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + tcp, ResourceVersion: deps.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range sw.ResultChan() {
			if s, ok := ev.Object.(*corev1.Secret); ok && ev.Type != watch.Deleted {
				l.secret(s)
			}
		}
	}()
	go func() {
		for ev := range dw.ResultChan() {
			if d, ok := ev.Object.(*appsv1.Deployment); ok && ev.Type != watch.Deleted {
				l.deployment(d)
			}
		}
	}()
	return l
}

// caughtUp waits until the log has seen the current state of every Secret and of the pod template.
func (l *changeLog) caughtUp(t *testing.T) {
	t.Helper()
	eventually(t, "the watches to catch up", func(ctx context.Context) (bool, error) {
		var list corev1.SecretList
		if err := env.Client.List(ctx, &list, client.InNamespace("default"), client.MatchingLabels{kamajiv1alpha1.NameLabel: l.tcp}); err != nil {
			return false, err
		}
		d := getDeployment(ctx, t, l.tcp)
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, s := range list.Items {
			seq := l.secrets[s.Name]
			if len(seq) == 0 || seq[len(seq)-1] != tenantpki.Checksum(s.Data) {
				return false, fmt.Errorf("Secret %s not seen yet", s.Name)
			}
		}
		return len(l.template) > 0 && l.template[len(l.template)-1] == d.Spec.Template.Annotations[controlplane.SecretsChecksumAnnotation], nil
	})
}

// expectChanges checks that exactly the named Secrets changed, once each, and that the pods
// rolled once (rolls=1) or not at all.
func (l *changeLog) expectChanges(t *testing.T, rolls int, changed ...string) {
	t.Helper()
	l.mu.Lock()
	names := make([]string, 0, len(l.secrets))
	for n := range l.secrets {
		names = append(names, n)
	}
	l.mu.Unlock()
	sort.Strings(names)
	for _, want := range changed {
		if !slices.Contains(names, want) {
			t.Errorf("Secret %s does not exist", want)
		}
	}
	for _, n := range names {
		want := 0
		if slices.Contains(changed, n) {
			want = 1
		}
		if got := l.changes(n); got != want {
			t.Errorf("Secret %s changed %d times, want %d", n, got, want)
		}
	}
	if got := l.rolls(); got != rolls {
		t.Errorf("the pod template's secrets checksum changed %d times, want %d", got, rolls)
	}
}

// passer runs passes of a reconciler of the test's own: the same code the manager runs, with
// its own plugin host and clock, and no tenant client (the admin-side steps only). A pass it
// ran is a pass known to have run.
type passer struct {
	r *tcpcontroller.Reconciler
}

func newPasser(t *testing.T, clock func() time.Time) *passer {
	t.Helper()
	host := pluginhost.New(managerPlugins, pluginhost.Options{ProbeInterval: -1})
	t.Cleanup(host.Close)
	return &passer{r: &tcpcontroller.Reconciler{
		Client: env.Client, APIReader: env.Client, Plugins: host, Now: clock,
		DataStores: &datastores.Cache{Reader: env.Client, TTL: time.Second},
		Options: tcpcontroller.Options{
			MaxConcurrentReconciles: 1, ReconcileTimeout: 30 * time.Second,
			CertificateExpirationDeadline: settings.MinCertificateExpirationDeadline,
		},
	}}
}

func (ps *passer) pass(t *testing.T, name string) ctrl.Result {
	t.Helper()
	res, err := ps.r.Reconcile(ctxT(t), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "default", Name: name}})
	if err != nil {
		t.Fatalf("a pass of %s: %v", name, err)
	}
	return res
}

// settled runs two passes and waits until the watches saw their outcome.
func (ps *passer) settled(t *testing.T, name string, l *changeLog) {
	t.Helper()
	ps.pass(t, name)
	ps.pass(t, name)
	l.caughtUp(t)
}

// leafCertKeys are the certificate Secrets a rotation request on the TCP reissues, by the key
// of their certificate.
func leafCertKeys(name string) map[string]string {
	return map[string]string{
		name + "-api-server-certificate":                tenantpki.KeyAPIServerCert,
		name + "-api-server-kubelet-client-certificate": tenantpki.KeyAPIServerKubeletClientCert,
		name + "-front-proxy-client-certificate":        tenantpki.KeyFrontProxyClientCert,
		name + "-konnectivity-certificate":              tenantpki.KeyKonnectivityCert,
		name + "-datastore-certificate":                 tenantpki.KeyDatastoreCert,
	}
}

func leafKubeconfigs(name string) []string {
	return []string{name + "-admin-kubeconfig", name + "-controller-manager-kubeconfig", name + "-scheduler-kubeconfig", name + "-konnectivity-kubeconfig"}
}

func serialsOf(t *testing.T, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for s, key := range leafCertKeys(name) {
		out[s] = certOf(t, getSecret(ctxT(t), t, s), key).SerialNumber.String()
	}
	return out
}

func rotationPending(obj client.Object) bool {
	_, ok := obj.GetAnnotations()[kamajiv1alpha1.RotateCertificatesAnnotation]
	return ok
}

// readyTCP creates a TCP on dataStore and plays its rollout until it is Ready.
func readyTCP(t *testing.T, name, dataStore string, change func(*kamajiv1alpha1.TenantControlPlane)) {
	t.Helper()
	createTCP(t, name, dataStore, change)
	rollOut(t, name)
	waitStatus(t, name, kamajiv1alpha1.VersionReady)
}

// createTCP creates a TCP on dataStore and waits for its Deployment. No replica runs: the TCP is
// then at rest (no tenant to reach), and only an event brings it back.
func createTCP(t *testing.T, name, dataStore string, change func(*kamajiv1alpha1.TenantControlPlane)) {
	t.Helper()
	tcp := newTCP(name, testenv.KubeVersion)
	tcp.Spec.DataStore = dataStore
	tcp.Spec.ControlPlane.Deployment.Replicas = ptr.To[int32](1)
	if change != nil {
		change(tcp)
	}
	if err := env.Client.Create(ctxT(t), tcp); err != nil {
		t.Fatal(err)
	}
	eventually(t, name+"'s Deployment", func(ctx context.Context) (bool, error) {
		return getTCP(ctx, t, name).Status.Kubernetes.Deployment.Name != "", nil
	})
}

func TestCertificateRotation(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	if err := env.Client.Create(ctxT(t), dataStoreFor("rotation", etcd)); err != nil {
		t.Fatal(err)
	}
	const name, other = "rotor", "rotor-2"
	readyTCP(t, name, "rotation", func(x *kamajiv1alpha1.TenantControlPlane) {
		x.Spec.Addons.Konnectivity = &kamajiv1alpha1.KonnectivitySpec{}
	})
	// At rest: only the DataStore's CA change brings it back (subtest 3).
	createTCP(t, other, "rotation", nil)
	eventually(t, "the konnectivity Secrets", func(ctx context.Context) (bool, error) {
		var s corev1.Secret
		err1 := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name + "-konnectivity-certificate"}, &s)
		err2 := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name + "-konnectivity-kubeconfig"}, &s)
		return err1 == nil && err2 == nil, fmt.Errorf("%v, %v", err1, err2)
	})
	ps := newPasser(t, now)
	ps.pass(t, name)

	t.Run("a rotation request on the TCP reissues every leaf certificate and kubeconfig once and rolls the pods once", func(t *testing.T) {
		log := watchChanges(t, name)
		log.caughtUp(t)
		before := serialsOf(t, name)
		ca := getSecret(ctxT(t), t, name+"-ca").Data
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Annotations = map[string]string{kamajiv1alpha1.RotateCertificatesAnnotation: "now"}
		})
		changed := append(leafKubeconfigs(name), slices.Collect(maps.Keys(leafCertKeys(name)))...)
		eventually(t, "every leaf to be reissued and the request removed", func(ctx context.Context) (bool, error) {
			if rotationPending(getTCP(ctx, t, name)) {
				return false, fmt.Errorf("the TCP still has the request")
			}
			for _, s := range changed {
				if log.changes(s) == 0 {
					return false, fmt.Errorf("%s not reissued yet", s)
				}
			}
			return log.rolls() > 0, fmt.Errorf("the pods did not roll yet")
		})
		ps.settled(t, name, log)
		log.expectChanges(t, 1, changed...)
		after := serialsOf(t, name)
		for s, serial := range before {
			if after[s] == serial {
				t.Errorf("%s kept its serial number %s", s, serial)
			}
		}
		if !equalData(getSecret(ctxT(t), t, name+"-ca").Data, ca) {
			t.Error("the CA changed: a rotation request on the TCP is for the leaves only")
		}
		for _, s := range changed {
			if rotationPending(getSecret(ctxT(t), t, s)) {
				t.Errorf("Secret %s still carries a rotation request", s)
			}
		}
		c := meta.FindStatusCondition(getTCP(ctxT(t), t, name).Status.Conditions, kamajiv1alpha1.ConditionCertificatesReady)
		if c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("CertificatesReady %+v", c)
		}
	})

	t.Run("a rotation request on one Secret reissues it and what depends on it, once", func(t *testing.T) {
		for _, tc := range []struct {
			annotate string
			changed  []string
		}{
			{name + "-controller-manager-kubeconfig", []string{name + "-controller-manager-kubeconfig"}},
			{name + "-api-server-certificate", []string{name + "-api-server-certificate"}},
			// The konnectivity kubeconfig's client certificate is the konnectivity certificate.
			{name + "-konnectivity-kubeconfig", []string{name + "-konnectivity-kubeconfig", name + "-konnectivity-certificate"}},
			{name + "-datastore-certificate", []string{name + "-datastore-certificate"}},
		} {
			log := watchChanges(t, name)
			log.caughtUp(t)
			annotateSecret(t, tc.annotate, map[string]string{kamajiv1alpha1.RotateCertificatesAnnotation: "now"})
			eventually(t, tc.annotate+" to be rotated", func(ctx context.Context) (bool, error) {
				if rotationPending(getSecret(ctx, t, tc.annotate)) {
					return false, fmt.Errorf("the request is still there")
				}
				for _, s := range tc.changed {
					if log.changes(s) == 0 {
						return false, fmt.Errorf("%s not reissued yet", s)
					}
				}
				return log.rolls() > 0, fmt.Errorf("the pods did not roll yet")
			})
			ps.settled(t, name, log)
			log.expectChanges(t, 1, tc.changed...)
		}
	})

	t.Run("a DataStore CA change reissues every datastore client certificate on it, once", func(t *testing.T) {
		logs := map[string]*changeLog{name: watchChanges(t, name), other: watchChanges(t, other)}
		for _, l := range logs {
			l.caughtUp(t)
		}
		// A new CA, with the old one still trusted (the etcd's server certificate chains to it).
		newCA := testkit.NewCA(t)
		updateDataStore(t, "rotation", func(ds *kamajiv1alpha1.DataStore) {
			ca := &ds.Spec.TLSConfig.CertificateAuthority
			ca.Certificate.Content = append(append([]byte{}, newCA.Cert...), etcd.CACert...)
			ca.PrivateKey.Content = newCA.Key
		})
		caCert, err := pki.ParseCert(newCA.Cert)
		if err != nil {
			t.Fatal(err)
		}
		for tcp, l := range logs {
			eventually(t, tcp+"'s datastore client certificate to be signed by the new CA", func(ctx context.Context) (bool, error) {
				c := certOf(t, getSecret(ctx, t, tcp+"-datastore-certificate"), tenantpki.KeyDatastoreCert)
				return c.CheckSignatureFrom(caCert) == nil, nil
			})
			eventually(t, tcp+"'s pods to roll", func(context.Context) (bool, error) { return l.rolls() > 0, nil })
			ps.settled(t, tcp, l)
			l.expectChanges(t, 1, tcp+"-datastore-certificate")
			verifyChain(t, certOf(t, getSecret(ctxT(t), t, tcp+"-datastore-certificate"), tenantpki.KeyDatastoreCert), caCert, x509.ExtKeyUsageClientAuth)
			// The apiserver trusts the whole bundle: the etcd still serves a certificate of the old CA.
			if got := getSecret(ctxT(t), t, tcp+"-datastore-certificate").Data[tenantpki.KeyDatastoreCACert]; string(got) != string(newCA.Cert)+string(etcd.CACert) {
				t.Errorf("%s's datastore ca.crt is not the DataStore's bundle:\n%s", tcp, got)
			}
		}
	})

	t.Run("a pass is requeued for the earliest renewal deadline, and renews what is due then", func(t *testing.T) {
		// A reconciler whose clock the test sets: the requeue is checked without waiting.
		var at time.Time
		clocked := newPasser(t, func() time.Time { return at })
		deadlines := renewalDeadlines(t, name)
		start := time.Now()
		which, due := earliestAfter(deadlines, start)
		if which == "" {
			t.Fatalf("no renewal deadline ahead among %v", deadlines)
		}
		// Far from any deadline: the wait is capped at half the expiration deadline.
		at = start
		if got := clocked.pass(t, name).RequeueAfter; got != settings.MinCertificateExpirationDeadline/2 {
			t.Errorf("requeue after %s at rest, want %s", got, settings.MinCertificateExpirationDeadline/2)
		}
		// 90 minutes before the earliest deadline: requeued for it (and a second past it).
		at = due.Add(-90 * time.Minute)
		if got := clocked.pass(t, name).RequeueAfter; got != 90*time.Minute+time.Second {
			t.Errorf("requeue after %s 90 minutes before %s is due, want 1h30m1s", got, which)
		}
		// Once it is due, the pass renews it and is requeued for the next deadline, never at once.
		at = due.Add(time.Minute)
		got := clocked.pass(t, name).RequeueAfter
		after := renewalDeadlines(t, name)
		if !after[which].After(at.Add(300 * 24 * time.Hour)) {
			t.Errorf("%s was not renewed when due: its deadline is %s", which, after[which])
		}
		next, nextDue := earliestAfter(after, at)
		want := min(nextDue.Sub(at)+time.Second, settings.MinCertificateExpirationDeadline/2)
		if got <= 0 || got != want {
			t.Errorf("requeue after %s once %s was renewed, want %s (next due: %s at %s)", got, which, want, next, nextDue)
		}
	})
}

// renewalDeadlines gives, for each certificate of the TCP's Secrets (the first of a PEM value,
// the client certificates of a kubeconfig), when it is due: NotAfter minus the manager's
// --certificate-expiration-deadline.
func renewalDeadlines(t *testing.T, name string) map[string]time.Time {
	t.Helper()
	var list corev1.SecretList
	if err := env.Client.List(ctxT(t), &list, client.InNamespace("default"), client.MatchingLabels{kamajiv1alpha1.NameLabel: name}); err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, s := range list.Items {
		for key, v := range s.Data {
			if c, err := pki.ParseCert(v); err == nil {
				out[s.Name+"/"+key] = c.NotAfter.Add(-settings.MinCertificateExpirationDeadline)
				continue
			}
			if cfg, err := clientcmd.Load(v); err == nil {
				for user, a := range cfg.AuthInfos {
					if c, err := pki.ParseCert(a.ClientCertificateData); err == nil {
						out[s.Name+"/"+key+"/"+user] = c.NotAfter.Add(-settings.MinCertificateExpirationDeadline)
					}
				}
			}
		}
	}
	return out
}

// earliestAfter is the earliest deadline after t0, and which certificate it is.
func earliestAfter(deadlines map[string]time.Time, t0 time.Time) (string, time.Time) {
	var which string
	var at time.Time
	for k, d := range deadlines {
		if d.After(t0) && (which == "" || d.Before(at)) {
			which, at = k, d
		}
	}
	return which, at
}

func equalData(a, b map[string][]byte) bool {
	return tenantpki.Checksum(a) == tenantpki.Checksum(b)
}
