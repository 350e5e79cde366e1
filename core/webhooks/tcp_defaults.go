package webhooks

import (
	"context"
	"encoding/json"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/netprofile"
)

type tcpDefaulter struct {
	opts   Options
	reader client.Reader
}

func (d *tcpDefaulter) Handle(_ context.Context, req admission.Request) admission.Response {
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	if err := json.Unmarshal(req.Object.Raw, tcp); err != nil {
		return admission.Errored(400, err)
	}
	var old *kamajiv1alpha1.TenantControlPlane
	if req.Operation == admissionv1.Update {
		old = &kamajiv1alpha1.TenantControlPlane{}
		if err := json.Unmarshal(req.OldObject.Raw, old); err != nil {
			return admission.Errored(400, err)
		}
	}
	DefaultTenantControlPlane(tcp, old, d.opts.DefaultDataStore)
	out, err := json.Marshal(tcp)
	if err != nil {
		return errored(err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, out)
}

// DefaultTenantControlPlane fills what a user may leave out. On create it sets the DataStore
// from the manager default, the portable schema and user names (SliceNames: unique even for
// generateName, whose name is not known yet), replicas, the plural CIDR
// lists from the deprecated singular fields, the DNS service IP and the v of a version written
// without it (1.37.2 becomes v1.37.2). On update it only fills
// names that a TCP created before they existed lacks, from what the status recorded.
func DefaultTenantControlPlane(tcp, old *kamajiv1alpha1.TenantControlPlane, defaultDataStore string) {
	spec := &tcp.Spec
	// On update a field the old object had is never refilled: unsetting it must reach the
	// CEL rules and be refused, not be silently undone.
	if spec.DataStore == "" && (old == nil || old.Spec.DataStore == "") {
		spec.DataStore = defaultDataStore
		if old != nil && old.Status.Storage.DataStoreName != "" {
			spec.DataStore = old.Status.Storage.DataStoreName
		}
	}
	schema, user := SliceNames(tcp.Namespace, tcp.Name, tcp.GenerateName)
	if spec.DataStoreSchema == "" && (old == nil || old.Spec.DataStoreSchema == "") {
		spec.DataStoreSchema = schema
		if old != nil && old.Status.Storage.Setup.Schema != "" {
			spec.DataStoreSchema = old.Status.Storage.Setup.Schema
		}
	}
	if spec.DataStoreUsername == "" && (old == nil || old.Spec.DataStoreUsername == "") {
		spec.DataStoreUsername = user
		if old != nil && old.Status.Storage.Setup.User != "" {
			spec.DataStoreUsername = old.Status.Storage.Setup.User
		}
	}
	if spec.ControlPlane.Deployment.Replicas == nil {
		spec.ControlPlane.Deployment.Replicas = ptr.To[int32](2)
	}
	// Blue/green by default: the new control plane is fully up before the old one goes, so
	// tenants never talk to a mix of versions. (The CRD default only applies when the whole
	// strategy is absent; typed clients send an empty one.)
	if st := &spec.ControlPlane.Deployment.Strategy; st.Type == "" && st.RollingUpdate == nil {
		st.Type = appsv1.RollingUpdateDeploymentStrategyType
		st.RollingUpdate = &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			MaxSurge:       ptr.To(intstr.FromString("100%")),
		}
	}

	// Kubernetes images are tagged v1.x.y. The version policy takes a version without its v,
	// which would name images that do not exist: it gets its v here.
	if v := spec.Kubernetes.Version; v != "" && !strings.HasPrefix(v, "v") {
		if _, err := version.ParseSemantic(v); err == nil {
			spec.Kubernetes.Version = "v" + v
		}
	}

	np := &spec.NetworkProfile
	// The plural lists are the source of truth; the deprecated singular fields mirror their
	// first entry so that consumers of either read the same range.
	if len(np.ServiceCIDRs) == 0 && np.ServiceCIDR != "" {
		np.ServiceCIDRs = []string{np.ServiceCIDR}
	}
	if len(np.ServiceCIDRs) > 0 {
		np.ServiceCIDR = np.ServiceCIDRs[0]
	}
	if len(np.PodCIDRs) == 0 && np.PodCIDR != "" {
		np.PodCIDRs = []string{np.PodCIDR}
	}
	if len(np.PodCIDRs) > 0 {
		np.PodCIDR = np.PodCIDRs[0]
	}
	if len(np.DNSServiceIPs) == 0 && len(np.ServiceCIDRs) > 0 {
		np.DNSServiceIPs = netprofile.ClusterDNS(*np)
	}
}
