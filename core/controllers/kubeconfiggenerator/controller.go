// Package kubeconfiggenerator reconciles KubeconfigGenerators: for every TenantControlPlane its
// selectors match, a kubeconfig Secret "<tcp>-<generator>" in the TCP's namespace, whose client
// certificate (CN the user, O the groups) is signed by that tenant's CA and whose server comes
// from the TCP's admin kubeconfig Secret. The Secrets are renewed before the manager's
// certificate-expiration-deadline, reissued when the CA, the user or the groups change, and
// deleted when their TCP stops matching. One pass per generator, in steps (one file each):
// select the TCPs → generate each Secret → prune the others → status.
package kubeconfiggenerator

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/secretdata"
)

// +kubebuilder:rbac:groups=kamaji.clastix.io,resources=kubeconfiggenerators,verbs=get;list;watch
// +kubebuilder:rbac:groups=kamaji.clastix.io,resources=kubeconfiggenerators/status,verbs=get;patch
// +kubebuilder:rbac:groups=kamaji.clastix.io,resources=tenantcontrolplanes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch;delete

// Reconciler reconciles KubeconfigGenerators.
type Reconciler struct {
	// Client reads through the manager's cache (Secrets: only the labelled ones) and writes.
	Client client.Client
	// APIReader reads uncached: the generator itself, and a Secret the cache cannot see.
	APIReader client.Reader
	Options   Options
	// Now is the clock of renewal decisions and of the certificates' validity.
	Now func() time.Time

	// data: the data of the Secrets read or written lately (the cache keeps none).
	data     *secretdata.Reader
	dataOnce sync.Once
	// cache is the manager's, whose TCPs each pass reads in place (set by SetupWithManager).
	cache cache.Informers
}

// How much of the Secrets' data the generator keeps in memory (it reads each TCP's CA and admin
// kubeconfig and writes one Secret per TCP and generator), and for how long unused.
const (
	keptSecretData = 512
	keptSecretTTL  = 2 * time.Minute
)

// secretData fills the Secrets read from the cache with their data.
func (r *Reconciler) secretData() *secretdata.Reader {
	r.dataOnce.Do(func() { r.data = secretdata.New(r.reader(), keptSecretData, keptSecretTTL) })
	return r.data
}

// Options are the manager settings the generator uses.
type Options struct {
	// CertificateExpirationDeadline: a certificate with less validity left is renewed
	// (tenantpki's default when zero).
	CertificateExpirationDeadline time.Duration
}

// Retry delays: a generator with errors is retried even if nothing it watches changes (a
// transient API failure); without errors it runs again at the earliest renewal, and at least
// this often.
const (
	retryErrors = 30 * time.Second
	maxRecheck  = time.Hour
)

// SecretKey is the data key of the kubeconfig in a generated Secret.
const SecretKey = "value"

// SecretName is the name of the Secret a generator writes for a TCP, in the TCP's namespace.
func SecretName(tcpName, generatorName string) string { return tcpName + "-" + generatorName }

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

// Reconcile runs one pass of a generator.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	gen := &kamajiv1alpha1.KubeconfigGenerator{}
	// Fresh, not cached: the status compared below must be the one last written.
	if err := r.reader().Get(ctx, req.NamespacedName, gen); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if _, paused := gen.Annotations[kamajiv1alpha1.PausedAnnotation]; paused {
		log.FromContext(ctx).V(1).Info("paused: not reconciling")
		return ctrl.Result{}, nil
	}
	if !gen.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // its Secrets are owned by it: the garbage collector removes them
	}

	now := r.now()
	st := kamajiv1alpha1.KubeconfigGeneratorStatus{}
	next := maxRecheck
	targets, selErr := r.selectTargets(ctx, gen)
	var badSelector *selectorError
	switch {
	case errors.As(selErr, &badSelector):
		st.Errors = append(st.Errors, kamajiv1alpha1.KubeconfigGeneratorStatusError{Resource: badSelector.field, Message: badSelector.Error()})
	case selErr != nil:
		return ctrl.Result{}, selErr
	default:
		st.Resources = len(targets)
		for _, tcp := range targets {
			renewAt, err := r.generate(ctx, gen, tcp, now)
			if err != nil {
				st.Errors = append(st.Errors, kamajiv1alpha1.KubeconfigGeneratorStatusError{Resource: key(tcp), Message: err.Error()})
				continue
			}
			st.AvailableResources++
			if d := renewAt.Sub(now); d < next {
				next = d
			}
		}
		// Only with a valid selection: a selector error must not delete every Secret.
		if err := r.prune(ctx, gen, targets); err != nil {
			return ctrl.Result{}, err
		}
	}
	sort.Slice(st.Errors, func(i, j int) bool { return st.Errors[i].Resource < st.Errors[j].Resource })
	if err := r.applyStatus(ctx, gen, st); err != nil {
		return ctrl.Result{}, err
	}
	if len(st.Errors) > 0 && next > retryErrors {
		next = retryErrors
	}
	if next < time.Second {
		// A renewal already due that did not happen: the CA itself expires before a new
		// certificate would (the TCP controller renews the CA). No tight loop meanwhile.
		next = retryErrors
	}
	return ctrl.Result{RequeueAfter: next}, nil
}

// applyStatus declares the whole status, when it changed.
func (r *Reconciler) applyStatus(ctx context.Context, gen *kamajiv1alpha1.KubeconfigGenerator, st kamajiv1alpha1.KubeconfigGeneratorStatus) error {
	if equality.Semantic.DeepEqual(gen.Status, st) {
		return nil
	}
	obj := &kamajiv1alpha1.KubeconfigGenerator{ObjectMeta: metav1.ObjectMeta{Name: gen.Name}, Status: st}
	return client.IgnoreNotFound(apply.ApplyStatus(ctx, r.Client, obj))
}
