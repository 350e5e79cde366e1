package driver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// validateTimeout bounds ValidateConfig's round trips, so a wrong endpoint shows up on the
// DataStore within seconds rather than at the host's deadline.
const validateTimeout = 5 * time.Second

// servers checks the fields of cfg this driver reads and returns the endpoints as the URLs the
// tenant's kube-apiserver gets in --etcd-servers ("https://host:port"). Errors name the field by
// its proto JSON name, which the core maps to the DataStore's field.
func servers(cfg datastore.Config) ([]string, error) {
	for _, k := range slices.Sorted(maps.Keys(cfg.Parameters)) {
		return nil, sdk.InvalidField("parameters."+k, "unknown parameter: the %s driver takes none", DriverName)
	}
	if len(cfg.Endpoints) == 0 {
		return nil, sdk.InvalidField("endpoints", "at least one etcd endpoint (host:port) is required")
	}
	out := make([]string, len(cfg.Endpoints))
	for i, ep := range cfg.Endpoints {
		u, err := serverURL(ep)
		if err != nil {
			return nil, sdk.InvalidField(fmt.Sprintf("endpoints[%d]", i), "%v", err)
		}
		out[i] = u
	}
	if len(cfg.CACert) == 0 {
		return nil, sdk.InvalidField("caCert", "required: etcd is reached over TLS, and tenants' apiservers verify it with this CA")
	}
	if len(cfg.CAKey) == 0 {
		return nil, sdk.InvalidField("caKey", "required: the core signs each tenant's etcd client certificate with it")
	}
	if _, err := tls.X509KeyPair(cfg.CACert, cfg.CAKey); err != nil {
		return nil, sdk.InvalidField("caKey", "does not match caCert: %v", err)
	}
	// The plugin's own identity on etcd: a client certificate whose CN is an etcd user with the
	// root role, or a user name and password.
	switch {
	case len(cfg.ClientCert) == 0 && cfg.Username == "":
		return nil, sdk.InvalidField("clientCert", "required (or username and password): the plugin manages etcd users and roles with it, as a user with the root role")
	case cfg.Username != "" && cfg.Password == "":
		return nil, sdk.InvalidField("password", "required with username")
	}
	if _, err := cfg.ClientTLS(""); err != nil { // names clientCert, clientKey or caCert
		return nil, err
	}
	return out, nil
}

// serverURL accepts what a DataStore's endpoints hold, "host:port", or "https://host:port".
func serverURL(ep string) (string, error) {
	hostport := ep
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil {
			return "", err
		}
		if u.Scheme != "https" {
			return "", fmt.Errorf("scheme %q: etcd is reached over https only", u.Scheme)
		}
		if u.Path != "" && u.Path != "/" {
			return "", fmt.Errorf("unexpected path %q", u.Path)
		}
		hostport = u.Host
	}
	host, port, err := net.SplitHostPort(hostport)
	switch {
	case err != nil:
		return "", fmt.Errorf("want host:port, got %q", ep)
	case host == "":
		return "", fmt.Errorf("no host in %q", ep)
	case strings.ContainsAny(host, ",;"):
		// --etcd-servers is comma-separated, and --etcd-servers-overrides semicolon-separated.
		return "", fmt.Errorf("host %q holds ',' or ';'", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("invalid port %q", port)
	}
	return "https://" + net.JoinHostPort(host, port), nil
}

// ValidateConfig checks the fields, then that etcd answers, has authentication enabled (or
// nothing would confine the tenants) and lets the configured user manage users (root role).
func (d *Driver) ValidateConfig(ctx context.Context, cfg datastore.Config) error {
	srv, err := servers(cfg)
	if err != nil {
		return err
	}
	cli, done, err := d.clients.get(cfg, srv)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, validateTimeout)
	defer cancel()
	auth, err := cli.AuthStatus(ctx)
	switch {
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		return status.Errorf(codes.PermissionDenied, "clientCert: the configured etcd user lacks the root role: %v", err)
	case err != nil:
		return status.Errorf(codes.Unavailable, "endpoints: etcd at %v does not answer: %v", srv, err)
	case !auth.Enabled:
		return status.Errorf(codes.FailedPrecondition, "etcd at %v has authentication disabled: tenants would not be isolated (run `etcdctl auth enable`)", srv)
	}
	if _, err := cli.UserList(ctx); err != nil {
		return status.Errorf(codes.PermissionDenied, "clientCert: the configured etcd user cannot list users (it needs the root role): %v", err)
	}
	return nil
}
