package manager

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/openhcp/kamaji/core/settings"
)

func TestRateLimitedSharesOneBucket(t *testing.T) {
	base := &rest.Config{Host: "https://admin.example:6443"}
	clients, election := rateLimited(base, &settings.Settings{KubeAPIQPS: 300, KubeAPIBurst: 600})
	if clients.RateLimiter == nil {
		t.Fatal("the clients' configuration has no shared bucket: each resource would get its own")
	}
	if got := clients.RateLimiter.QPS(); got != 300 {
		t.Errorf("shared bucket QPS %g, want 300 (--kube-api-qps)", got)
	}
	// Every REST client built from the configuration takes that bucket, whatever its resource.
	a, err := rest.RESTClientFor(withGroup(clients, "apps"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := rest.RESTClientFor(withGroup(clients, ""))
	if err != nil {
		t.Fatal(err)
	}
	if a.GetRateLimiter() != b.GetRateLimiter() || a.GetRateLimiter() != clients.RateLimiter {
		t.Error("two REST clients of the manager got different buckets")
	}
	if election.RateLimiter != nil || election.QPS != 300 || election.Burst != 600 {
		t.Errorf("leader election: limiter %v, QPS %g, burst %d; want a bucket of its own at 300/600", election.RateLimiter, election.QPS, election.Burst)
	}
	if base.RateLimiter != nil || base.QPS != 0 {
		t.Error("the caller's configuration was changed")
	}
}

func TestRateLimitedWithoutSettingsKeepsTheConfig(t *testing.T) {
	base := &rest.Config{Host: "https://admin.example:6443", QPS: 7, Burst: 9}
	clients, _ := rateLimited(base, &settings.Settings{})
	if clients.RateLimiter != nil || clients.QPS != 7 || clients.Burst != 9 {
		t.Errorf("got limiter %v, QPS %g, burst %d; want the config's own 7/9", clients.RateLimiter, clients.QPS, clients.Burst)
	}
}

func withGroup(c *rest.Config, group string) *rest.Config {
	c = rest.CopyConfig(c)
	c.GroupVersion = &schema.GroupVersion{Group: group, Version: "v1"}
	c.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
	c.APIPath = "/apis"
	if group == "" {
		c.APIPath = "/api"
	}
	return c
}
