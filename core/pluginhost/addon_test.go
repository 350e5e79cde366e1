package pluginhost

import (
	"context"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
)

// The sdk's test plugin serves the addon "echo" with -kind addon.
func addonEntry(path, sha string, addons ...string) settings.Plugin {
	if len(addons) == 0 {
		addons = []string{"echo"}
	}
	return settings.Plugin{Kind: settings.KindAddon, Name: "echo-plugin", Path: path, SHA256: sha, Args: []string{"-kind", "addon"}, Addons: addons}
}

func TestAddonPluginStartsRendersAndIsReused(t *testing.T) {
	path, sha := testPlugin(t)
	h := New([]settings.Plugin{addonEntry(path, sha)}, Options{})
	defer h.Close()
	c, st, err := h.Addon(context.Background(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "fake-addon" || st.Protocol != sdk.ProtocolVersion || !slices.Contains(st.Capabilities, addon.CapabilityControlPlaneAdditions) {
		t.Fatalf("status %+v", st)
	}
	res, err := c.Render(context.Background(), addon.RenderRequest{Addon: "echo", Tenant: addon.TenantParameters{Name: "a", Namespace: "b"}})
	if err != nil || len(res.Objects) != 1 || res.ControlPlane == nil || len(res.ControlPlane.Files) != 1 {
		t.Fatalf("render: %+v %v", res, err)
	}
	again, _, err := h.Addon(context.Background(), "echo")
	if err != nil || again != c {
		t.Fatalf("a running plugin must be reused: %v", err)
	}
}

func TestAddonFailureModes(t *testing.T) {
	path, sha := testPlugin(t)
	for name, tc := range map[string]struct {
		plugin  settings.Plugin
		addon   string
		reason  string
		mention string
	}{
		"addon not configured": {addonEntry(path, sha), "coredns", ReasonNotConfigured, `addon "coredns"`},
		"missing binary":       {addonEntry("/nonexistent/kamaji-addon-x", sha), "echo", ReasonBinaryMissing, "/nonexistent/kamaji-addon-x"},
		"wrong sha256":         {addonEntry(path, strings.Repeat("0", 64)), "echo", ReasonChecksumMismatch, "sha256"},
		"addon mismatch":       {addonEntry(path, sha, "coredns"), "coredns", ReasonAddonMismatch, `lists addon "coredns"`},
		"a datastore plugin":   {settings.Plugin{Kind: settings.KindAddon, Name: "ds", Path: path, SHA256: sha, Addons: []string{"echo"}}, "echo", ReasonHandshakeFailed, "addon contract"},
	} {
		t.Run(name, func(t *testing.T) {
			h := New([]settings.Plugin{tc.plugin}, Options{StartTimeout: 3 * time.Second})
			defer h.Close()
			_, _, err := h.Addon(context.Background(), tc.addon)
			expectReason(t, err, tc.reason, tc.mention)
			if pe, _ := AsError(err); tc.reason != ReasonNotConfigured && pe.RetryAfter <= 0 {
				t.Errorf("a failed start must back off, RetryAfter=%s", pe.RetryAfter)
			}
		})
	}
}

func TestCrashedAddonPluginIsRestartedWithBackoff(t *testing.T) {
	path, sha := testPlugin(t)
	now := time.Now()
	h := New([]settings.Plugin{addonEntry(path, sha)}, Options{Now: func() time.Time { return now }})
	defer h.Close()
	c, _, err := h.Addon(context.Background(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	pid := c.Pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return c.Exited(), nil }); err != nil {
		t.Fatal("the killed plugin was never seen as exited")
	}
	_, _, err = h.Addon(context.Background(), "echo")
	expectReason(t, err, ReasonRestarting, "exited")
	pe, _ := AsError(err)
	now = now.Add(pe.RetryAfter)
	c2, _, err := h.Addon(context.Background(), "echo")
	if err != nil {
		t.Fatalf("after the backoff the plugin must be restarted: %v", err)
	}
	if c2.Pid() == pid {
		t.Fatal("same process after a crash")
	}
}

// A datastore plugin and an addon plugin run side by side, each found by what it serves.
func TestDataStoreAndAddonPluginsCoexist(t *testing.T) {
	path, sha := testPlugin(t)
	h := New([]settings.Plugin{entry(path, sha), addonEntry(path, sha)}, Options{})
	defer h.Close()
	if _, _, err := h.DataStore(context.Background(), "fake"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Addon(context.Background(), "echo"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Addon(context.Background(), "fake"); err == nil {
		t.Fatal("a datastore driver was served as an addon")
	}
}
