package tenantcontrolplane

import (
	"context"
	"net/url"

	"github.com/openhcp/kamaji/core/sleep"
)

// Where the activity audit files go in kube-apiserver.
const (
	activityAuditPolicyPath  = "/etc/kubernetes/kamaji-activity/audit-policy.yaml"
	activityAuditWebhookPath = "/etc/kubernetes/kamaji-activity/audit-webhook.kubeconfig"
)

// stepActivityAudit makes the apiserver of a TCP that may sleep post the audit events of
// requests from outside its control plane to the manager, in batches (core/sleep's
// AuditHandler records them as the TCP's activity). Adding or removing the annotation rolls the
// control-plane pods once; so does a new CA of the manager's webhook certificate, which the
// apiserver reads only at start.
func stepActivityAudit(_ context.Context, _ *Reconciler, p *pass) error {
	wh := p.sleep.activity
	if p.sleep.after == 0 || wh == nil {
		return nil
	}
	target := wh.URL
	if u, err := url.Parse(wh.URL); err == nil {
		// wh.URL is the deny handler's; the activity handler is beside it.
		u.Path = sleep.ActivityPath + url.PathEscape(p.tcp.Namespace) + "/" + url.PathEscape(p.tcp.Name)
		target = u.String()
	}
	addAPIServerFile(p, activityAuditPolicyPath, sleep.AuditPolicy())
	addAPIServerFile(p, activityAuditWebhookPath, sleep.WebhookKubeconfig(target, wh.CABundle))
	p.additions.APIServerArgs = append(p.additions.APIServerArgs,
		"--audit-policy-file="+activityAuditPolicyPath,
		"--audit-webhook-config-file="+activityAuditWebhookPath,
		"--audit-webhook-mode=batch",
		"--audit-webhook-batch-max-wait="+sleep.AuditBatchWait.String(),
	)
	return nil
}
