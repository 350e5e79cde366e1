package kubeconfig

import (
	"errors"

	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/tenantpki"
)

// EnsureControllerManager keeps or rebuilds the controller-manager kubeconfig Secret
// (ControllerManagerSecretName, key controller-manager.conf). server is normally
// LocalServer(port).
func EnsureControllerManager(current map[string][]byte, ca *pki.KeyPair, clusterName, server string, opts tenantpki.Options, clock tenantpki.Clock) (map[string][]byte, tenantpki.Reason, error) {
	return ensureSingle(current, KeyControllerManager, ca, clusterName, server, client{user: ControllerManager}, opts, clock)
}

// EnsureScheduler keeps or rebuilds the scheduler kubeconfig Secret (SchedulerSecretName, key
// scheduler.conf). server is normally LocalServer(port).
func EnsureScheduler(current map[string][]byte, ca *pki.KeyPair, clusterName, server string, opts tenantpki.Options, clock tenantpki.Clock) (map[string][]byte, tenantpki.Reason, error) {
	return ensureSingle(current, KeyScheduler, ca, clusterName, server, client{user: Scheduler}, opts, clock)
}

func ensureSingle(current map[string][]byte, key string, ca *pki.KeyPair, clusterName, server string, c client, opts tenantpki.Options, clock tenantpki.Clock) (map[string][]byte, tenantpki.Reason, error) {
	conf, _, reason, err := ensureConf(current[key], ca, clusterName, server, c, opts, clock)
	if err != nil {
		return nil, "", err
	}
	return map[string][]byte{key: conf}, reason, nil
}

// EnsureKonnectivity keeps or rebuilds the konnectivity-server kubeconfig Secret
// (KonnectivitySecretName, key konnectivity-server.conf). It wraps the konnectivity
// certificate (tenantpki.EnsureKonnectivity, CN system:konnectivity-server) rather than issuing
// one: the sidecar presents the same pair to agents and to the apiserver. server is normally
// LocalServer(port).
func EnsureKonnectivity(current map[string][]byte, ca *pki.KeyPair, clusterName, server string, certPEM, keyPEM []byte) (map[string][]byte, tenantpki.Reason, error) {
	if ca == nil || ca.Cert == nil {
		return nil, "", errors.New("kubeconfig: no CA")
	}
	conf, reason, err := wrap(current[KeyKonnectivity], ca, clusterName, server, tenantpki.KonnectivityCommonName, pair{certPEM, keyPEM}, tenantpki.Unchanged)
	if err != nil {
		return nil, "", err
	}
	if len(current[KeyKonnectivity]) == 0 {
		reason = tenantpki.Created
	}
	return map[string][]byte{KeyKonnectivity: conf}, reason, nil
}
