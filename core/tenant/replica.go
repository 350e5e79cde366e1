package tenant

import (
	"fmt"
	"net"
	"net/url"
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ReplicaClient reaches one replica of a tenant apiserver at podIP:port rather than through
// the Service, which balances over every replica: a change that must land on the replicas of
// one pod template (those on a migration's target DataStore, while the replicas left on the
// source still serve) goes there directly. TLS is verified against the kubeconfig's host, which
// the serving certificate names; the mapper lists the kinds the caller uses, so no discovery
// round trip precedes the first request. The client is uncached and meant for a few calls.
func (c *Clients) ReplicaClient(kubeconfig []byte, podIP string, port int32, mapper meta.RESTMapper) (client.Client, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("the admin kubeconfig is unusable: %w", err)
	}
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("the admin kubeconfig's server %q: %w", cfg.Host, err)
	}
	if cfg.TLSClientConfig.ServerName == "" {
		cfg.TLSClientConfig.ServerName = u.Hostname()
	}
	cfg.Host = "https://" + net.JoinHostPort(podIP, strconv.Itoa(int(port)))
	cfg.UserAgent = UserAgent
	return client.New(cfg, client.Options{Scheme: c.opts.Scheme, Mapper: mapper})
}
