package webhooks

import (
	"context"
	"strings"
	"testing"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/settings"
)

func TestRuleAddonsRefusesAnAddonNoPluginServes(t *testing.T) {
	served := settings.AddonSet{"coredns": "addons"}
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	tcp.Spec.Addons.CoreDNS = &kamajiv1alpha1.AddonSpec{}
	tcp.Spec.Addons.KubeProxy = &kamajiv1alpha1.AddonSpec{}
	errs := ruleAddons(context.Background(), &tcpRuleContext{New: tcp, Opts: Options{Addons: served}})
	if len(errs) != 1 || errs[0].Field != "spec.addons.kubeProxy" ||
		!strings.Contains(errs[0].Error(), `no configured plugin serves the addon "kube-proxy" (served: coredns)`) {
		t.Fatalf("errors %v", errs)
	}
	// Asked for before (the plugin was removed from the configuration since): not locked.
	if errs := ruleAddons(context.Background(), &tcpRuleContext{Old: tcp.DeepCopy(), New: tcp, Opts: Options{Addons: served}}); len(errs) != 0 {
		t.Errorf("an update of a TCP that already had the addon: %v", errs)
	}
	if errs := ruleAddons(context.Background(), &tcpRuleContext{New: tcp, Opts: Options{Addons: settings.AddonSet{}}}); len(errs) != 2 || !strings.Contains(errs[0].Error(), "(served: none)") {
		t.Errorf("no addon plugin at all: %v", errs)
	}
}
