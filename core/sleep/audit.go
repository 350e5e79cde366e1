package sleep

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/openhcp/kamaji/core/tenant"
)

// maxAuditBody bounds one batch of audit events; the apiserver's default batch (400 events at
// Metadata level) is far below it.
const maxAuditBody = 8 << 20

// internalUsers are the control plane's own identities: their requests keep nothing awake. The
// core's own requests are told by their user agent (tenant.UserAgent), not by their identity:
// super-admin.conf is also handed to people.
var internalUsers = []string{
	"system:apiserver",
	"system:kube-controller-manager",
	"system:kube-scheduler",
	"system:konnectivity-server",
}

// internalGroup holds the tenant's kube-system service accounts (addons, controllers).
const internalGroup = "system:serviceaccounts:kube-system"

// probePaths are polled by kubelets and load balancers, not by users.
var probePaths = []string{"/healthz", "/livez", "/readyz"}

// auditEventList is the part of an audit.k8s.io/v1 EventList the handler reads.
type auditEventList struct {
	Items []auditEvent `json:"items"`
}

type auditEvent struct {
	Stage string `json:"stage"`
	User  struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	} `json:"user"`
	RequestURI string `json:"requestURI"`
	UserAgent  string `json:"userAgent"`
}

// outside tells whether the event is a request from outside the control plane. The tenant's
// audit policy already drops the others; a user may bring their own policy, hence again here.
func (e *auditEvent) outside() bool {
	if slices.Contains(internalUsers, e.User.Username) || slices.Contains(e.User.Groups, internalGroup) || strings.HasPrefix(e.UserAgent, tenant.UserAgent) {
		return false
	}
	path, _, _ := strings.Cut(e.RequestURI, "?")
	for _, p := range probePaths {
		if path == p || strings.HasPrefix(path, p+"/") {
			return false
		}
	}
	return true
}

// AuditHandler receives the audit events tenant apiservers post (batch webhook backend) to
// ActivityPath + "<namespace>/<name>" and touches the TCP when one is outside activity. It
// answers 500 when the touch fails, so the apiserver retries the batch.
func AuditHandler(t Toucher, log logr.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := activityKey(r.URL.Path)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "only POST", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAuditBody))
		if err != nil {
			if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
				http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		var list auditEventList
		if err := json.Unmarshal(body, &list); err != nil {
			// The decoder's message may quote the body: not echoed, not logged.
			http.Error(w, "body is not an audit EventList", http.StatusBadRequest)
			return
		}
		n := 0
		for i := range list.Items {
			if list.Items[i].outside() {
				n++
			}
		}
		log.V(1).Info("audit events", "tenantControlPlane", key, "events", len(list.Items), "outside", n)
		if n > 0 {
			if err := t.Touch(r.Context(), key, false); err != nil {
				log.Error(err, "record tenant activity", "tenantControlPlane", key)
				http.Error(w, "record activity failed", http.StatusInternalServerError)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	})
}

// activityKey parses ActivityPath + "<namespace>/<name>".
func activityKey(path string) (types.NamespacedName, bool) {
	rest, ok := strings.CutPrefix(path, ActivityPath)
	if !ok {
		return types.NamespacedName{}, false
	}
	ns, name, ok := strings.Cut(rest, "/")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Label(name)) > 0 {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: ns, Name: name}, true
}

// AuditPolicy is the audit.k8s.io/v1 Policy of a sleep-enabled tenant apiserver: Metadata for
// outside requests, nothing for the control plane's own ones, so the webhook sees little.
func AuditPolicy() []byte {
	type rule struct {
		Level           string   `json:"level"`
		Users           []string `json:"users,omitempty"`
		UserGroups      []string `json:"userGroups,omitempty"`
		NonResourceURLs []string `json:"nonResourceURLs,omitempty"`
	}
	probes := make([]string, 0, len(probePaths))
	for _, p := range probePaths {
		probes = append(probes, p+"*")
	}
	return mustYAML(struct {
		APIVersion        string   `json:"apiVersion"`
		Kind              string   `json:"kind"`
		OmitStages        []string `json:"omitStages"`
		OmitManagedFields bool     `json:"omitManagedFields"`
		Rules             []rule   `json:"rules"`
	}{
		APIVersion:        "audit.k8s.io/v1",
		Kind:              "Policy",
		OmitStages:        []string{"RequestReceived"},
		OmitManagedFields: true,
		Rules: []rule{
			{Level: "None", Users: internalUsers},
			{Level: "None", UserGroups: []string{internalGroup}},
			{Level: "None", NonResourceURLs: probes},
			{Level: "Metadata"},
		},
	})
}

// WebhookKubeconfig is the --audit-webhook-config-file of a tenant apiserver: it posts to url,
// trusting caPEM, with no client credentials (the path names the TCP).
func WebhookKubeconfig(url string, caPEM []byte) []byte {
	const name = "kamaji-activity"
	type cluster struct {
		Server                   string `json:"server"`
		CertificateAuthorityData []byte `json:"certificate-authority-data"` // base64, as kubeconfig wants
	}
	type namedCluster struct {
		Name    string  `json:"name"`
		Cluster cluster `json:"cluster"`
	}
	type kubeContext struct {
		Cluster string `json:"cluster"`
		User    string `json:"user"`
	}
	type namedContext struct {
		Name    string      `json:"name"`
		Context kubeContext `json:"context"`
	}
	type namedUser struct {
		Name string         `json:"name"`
		User map[string]any `json:"user"`
	}
	return mustYAML(struct {
		APIVersion     string         `json:"apiVersion"`
		Kind           string         `json:"kind"`
		Clusters       []namedCluster `json:"clusters"`
		Contexts       []namedContext `json:"contexts"`
		Users          []namedUser    `json:"users"`
		CurrentContext string         `json:"current-context"`
	}{
		APIVersion:     "v1",
		Kind:           "Config",
		Clusters:       []namedCluster{{Name: name, Cluster: cluster{Server: url, CertificateAuthorityData: caPEM}}},
		Contexts:       []namedContext{{Name: name, Context: kubeContext{Cluster: name, User: name}}},
		Users:          []namedUser{{Name: name, User: map[string]any{}}},
		CurrentContext: name,
	})
}

// mustYAML marshals the fixed, plain structs above, which cannot fail to encode.
func mustYAML(v any) []byte {
	out, err := yaml.Marshal(v)
	if err != nil {
		panic("sleep: encode YAML: " + err.Error())
	}
	return out
}
