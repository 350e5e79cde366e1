package webhooks

import (
	"context"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/openhcp/kamaji/core/tenant/writeblock"
)

// TenantDenyPath is where tenant apiservers call the webhooks core/tenant/writeblock installs in
// them (kamaji-freeze, kamaji-write-permissions); the message follows as one more path segment.
const TenantDenyPath = "/tenant/deny/"

// tenantDeny refuses every request it receives, with the message of its URL: the webhook
// configuration in the tenant selected the request, so it is one to refuse. It keeps no state.
type tenantDeny struct{}

type denyMessageKey struct{}

func (tenantDeny) Handle(ctx context.Context, _ admission.Request) admission.Response {
	msg, _ := ctx.Value(denyMessageKey{}).(string)
	if msg == "" {
		msg = "refused by Kamaji: this tenant's writes are blocked"
	}
	return admission.Denied(msg) // 403 Forbidden, the message as the status message
}

// TenantDenyWebhook is the handler of TenantDenyPath.
func TenantDenyWebhook() *admission.Webhook {
	return &admission.Webhook{
		Handler: tenantDeny{},
		WithContextFunc: func(ctx context.Context, r *http.Request) context.Context {
			msg, _ := writeblock.MessageFromPath(TenantDenyPath, r.URL.EscapedPath())
			return context.WithValue(ctx, denyMessageKey{}, msg)
		},
	}
}
