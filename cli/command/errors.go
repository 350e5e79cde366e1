package command

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cli/status"
)

// explain turns an API or transport error into one readable line. A 403 keeps the
// apiserver's own words, which name the user, the verb and the resource refused; the other
// cases say what to check.
func explain(err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	var oe *net.OpError
	switch {
	case apierrors.IsForbidden(err):
		msg := apiMessage(err)
		if _, after, ok := strings.Cut(msg, " is forbidden: "); ok {
			msg = after
		}
		return fmt.Errorf("no permission: %s", status.OneLine(msg))
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the cluster refused your credentials (401 Unauthorized): check --context and your kubeconfig's user")
	case meta.IsNoMatchError(err) || isNotServed(err):
		return fmt.Errorf("this cluster does not serve %s: is the kamaji operator installed (check --context)?", kamajiv1alpha1.GroupVersion)
	case errors.As(err, &ue):
		return fmt.Errorf("cannot reach the cluster at %s: %s", hostOf(ue.URL), status.OneLine(ue.Err.Error()))
	case errors.As(err, &oe):
		return fmt.Errorf("cannot reach the cluster: %s", status.OneLine(oe.Error()))
	}
	return errors.New(status.OneLine(err.Error()))
}

func apiMessage(err error) string {
	var s apierrors.APIStatus
	if errors.As(err, &s) && s.Status().Message != "" {
		return s.Status().Message
	}
	return err.Error()
}

// isNotServed: the apiserver answers 404 for the resource itself (CRD not installed, or
// discovery stale).
func isNotServed(err error) bool {
	var s apierrors.APIStatus
	if !errors.As(err, &s) || !apierrors.IsNotFound(err) {
		return false
	}
	d := s.Status().Details
	return d != nil && d.Name == "" && strings.Contains(s.Status().Message, "the server could not find the requested resource")
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return u
	}
	return p.Scheme + "://" + p.Host
}

// notFound is the error for a TCP that does not exist.
func notFound(namespace, name string) error {
	return fmt.Errorf("TenantControlPlane %q not found in namespace %q (kubectl kamaji list -A lists them all)", name, namespace)
}
