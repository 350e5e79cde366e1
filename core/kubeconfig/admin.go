package kubeconfig

import (
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/tenantpki"
)

// AdminServers are the two URLs of the admin kubeconfigs.
type AdminServers struct {
	// Public is the tenant's public endpoint (PublicServer(status.controlPlaneEndpoint)).
	Public string
	// Service is the tenant Service inside the admin cluster (ServiceServer).
	Service string
}

var (
	admin      = client{user: AdminUser, group: AdminGroup}
	superAdmin = client{user: SuperAdminUser, group: SuperAdminGroup}
)

// EnsureAdmin keeps or rebuilds the admin kubeconfig Secret (AdminSecretName): admin.conf and
// super-admin.conf dial servers.Public, admin.svc and super-admin.svc carry the same
// certificates and dial servers.Service. The .svc variants follow their .conf: they are rebuilt
// whenever its certificate is reissued, so both always authenticate as the same client.
func EnsureAdmin(current map[string][]byte, ca *pki.KeyPair, clusterName string, servers AdminServers, opts tenantpki.Options, clock tenantpki.Clock) (map[string][]byte, tenantpki.Reason, error) {
	out := map[string][]byte{}
	var reasons []tenantpki.Reason
	for _, v := range []struct {
		conf, svc string
		c         client
	}{{KeyAdmin, KeyAdminSvc, admin}, {KeySuperAdmin, KeySuperAdminSvc, superAdmin}} {
		conf, p, r, err := ensureConf(current[v.conf], ca, clusterName, servers.Public, v.c, opts, clock)
		if err != nil {
			return nil, "", err
		}
		svc, rs, err := wrap(current[v.svc], ca, clusterName, servers.Service, v.c.user, p, tenantpki.Unchanged)
		if err != nil {
			return nil, "", err
		}
		out[v.conf], out[v.svc] = conf, svc
		reasons = append(reasons, r, rs)
	}
	return out, tenantpki.Combine(reasons...), nil
}
