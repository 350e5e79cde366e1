package tenant

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// UserAgent is the user agent of the core's requests to tenant apiservers: the activity audit
// of a tenant that may sleep (core/sleep) does not count them.
const UserAgent = "kamaji-manager"

// ReadyTimeout bounds the /readyz check of a tenant apiserver.
const ReadyTimeout = 5 * time.Second

// Client reaches one tenant apiserver. Client (the embedded controller-runtime client) reads
// and writes directly, without a cache; Watch adds a label-selected, metadata-only watch on
// one kind.
type Client struct {
	client.Client

	key  types.NamespacedName
	sum  string
	host string
	http *http.Client
	meta metadata.Interface
	log  logr.Logger

	changed func()

	mu      sync.Mutex
	stopped bool
	stopCh  chan struct{}
	watches map[schema.GroupVersionResource]*watch
	// events counts, by unit (UnitOf), the changes the watches saw; see Unchanged.
	events   map[string]uint64
	recorded map[string]record
}

// record is what was last applied for one unit (a kubeadm phase, an addon).
type record struct {
	checksum string
	events   uint64
}

func newClient(key types.NamespacedName, kubeconfig []byte, sum string, opts Options, changed func()) (*Client, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("the admin kubeconfig is unusable: %w", err)
	}
	if opts.Dial != nil {
		server := cfg.Host
		cfg.Host = opts.Dial(server)
		if cfg.Host != server && cfg.TLSClientConfig.ServerName == "" {
			// TLS still verifies the tenant's identity as the kubeconfig names it.
			if u, err := url.Parse(server); err == nil {
				cfg.TLSClientConfig.ServerName = u.Hostname()
			}
		}
	}
	cfg.UserAgent = UserAgent
	cfg.QPS, cfg.Burst = 50, 100
	// No cfg.Timeout: it would cut the watches. Requests are bounded by their contexts.
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return nil, err
	}
	scheme := opts.Scheme
	if scheme == nil {
		scheme = clientgoscheme.Scheme
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme, Mapper: mapper, HTTPClient: hc})
	if err != nil {
		return nil, err
	}
	md, err := metadata.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, err
	}
	return &Client{
		Client: cl, key: key, sum: sum, host: cfg.Host, http: hc, meta: md,
		log:     opts.Log.WithValues("tenant", key.String()),
		changed: changed, stopCh: make(chan struct{}),
		watches: map[schema.GroupVersionResource]*watch{}, events: map[string]uint64{}, recorded: map[string]record{},
	}, nil
}

// Host is the URL dialed.
func (c *Client) Host() string { return c.host }

// Ready asks the tenant apiserver's /readyz, within ReadyTimeout.
func (c *Client) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.host+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("/readyz answered %d: %s", resp.StatusCode, body)
	}
	return nil
}

// Units group the objects the core applies in a tenant: an addon's, a kubeadm phase's. Watch
// events are counted by unit, from the labels of the object that changed.
func AddonUnit(addon string) string { return "addon/" + addon }
func PhaseUnit(phase string) string { return "phase/" + phase }

// UnitOf is the unit of an object, from its labels.
func UnitOf(labels map[string]string) string {
	if a := labels[kamajiv1alpha1.AddonLabel]; a != "" {
		return AddonUnit(a)
	}
	if p := labels[kamajiv1alpha1.PhaseLabel]; p != "" {
		return PhaseUnit(p)
	}
	return "other"
}

// Unchanged tells whether unit was last applied with this checksum and none of its objects
// changed since: applying again would change nothing. It is only trusted while the watches of
// the unit's kinds run, which the caller ensures with Watch before asking.
func (c *Client) Unchanged(unit, checksum string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.recorded[unit]
	return ok && r.checksum == checksum && r.events == c.events[unit]
}

// Events is the count of changes seen so far in unit; read it before applying and give it to
// Record.
func (c *Client) Events(unit string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events[unit]
}

// Record notes that unit was applied with checksum when Events(unit) was events.
func (c *Client) Record(unit, checksum string, events uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recorded[unit] = record{checksum: checksum, events: events}
}

// Forget drops what Record noted, so the next pass applies unit again.
func (c *Client) Forget(unit string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.recorded, unit)
}

func (c *Client) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.stopped = true
	close(c.stopCh)
	c.watches = map[schema.GroupVersionResource]*watch{}
	c.http.CloseIdleConnections()
}

func (c *Client) watchedResources() map[schema.GroupVersionResource]*watch {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[schema.GroupVersionResource]*watch, len(c.watches))
	for k, v := range c.watches {
		out[k] = v
	}
	return out
}
