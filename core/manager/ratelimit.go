package manager

import (
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/openhcp/kamaji/core/settings"
)

// rateLimited returns the configuration of the manager's clients to the admin apiserver, all
// sharing one token bucket of --kube-api-qps and --kube-api-burst, and the configuration of
// leader election, which keeps a bucket of its own.
//
// Why one bucket: client-go gives every REST client a bucket of its own from QPS and Burst, and
// controller-runtime builds one REST client per resource, so the flags bounded each resource
// apart. Secrets, ten per new TCP, were throttled at --kube-api-qps while the admin apiserver
// had room: provisioning ran at QPS/10 TCPs per second whatever the machine. Why not for the
// lease: a manager busy with a thousand new TCPs must not renew its lease late and lose it.
func rateLimited(cfg *rest.Config, s *settings.Settings) (clients, election *rest.Config) {
	clients, election = rest.CopyConfig(cfg), rest.CopyConfig(cfg)
	if s.KubeAPIQPS <= 0 || s.KubeAPIBurst < 1 {
		return clients, election // the config's own limits (tests)
	}
	qps := float32(s.KubeAPIQPS)
	clients.QPS, clients.Burst = qps, s.KubeAPIBurst
	clients.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(qps, s.KubeAPIBurst)
	election.QPS, election.Burst = qps, s.KubeAPIBurst
	election.RateLimiter = nil
	return clients, election
}
