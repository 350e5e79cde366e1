package testenv

import (
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/openhcp/kamaji/core/config"
)

// InstallCRDs creates (or updates) our CRDs and waits until they are served.
func (p *Plane) InstallCRDs(ctx context.Context) error {
	cs, err := apiextensionsclient.NewForConfig(p.Config)
	if err != nil {
		return err
	}
	crds, err := config.LoadCRDs()
	if err != nil {
		return err
	}
	return InstallCRDs(ctx, cs, crds...)
}

// InstallCRDs creates or updates the given CRDs and waits until each is Established.
func InstallCRDs(ctx context.Context, cs apiextensionsclient.Interface, crds ...*apiextensionsv1.CustomResourceDefinition) error {
	api := cs.ApiextensionsV1().CustomResourceDefinitions()
	for _, crd := range crds {
		existing, err := api.Get(ctx, crd.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if _, err := api.Create(ctx, crd, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create CRD %s: %w", crd.Name, err)
			}
		case err != nil:
			return err
		default:
			crd.ResourceVersion = existing.ResourceVersion
			if _, err := api.Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update CRD %s: %w", crd.Name, err)
			}
		}
	}
	for _, crd := range crds {
		name := crd.Name
		if err := poll(ctx, nil, "CRD "+name+" established", func() bool {
			got, err := api.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return true
				}
			}
			return false
		}); err != nil {
			return err
		}
	}
	return nil
}

// RegisterWebhooks installs our generated webhook configurations, pointed at a webhook server
// listening on addr (host:port) with a certificate from the plane's CA, and waits for it.
func (p *Plane) RegisterWebhooks(ctx context.Context, addr string) error {
	if err := p.waitTLS(ctx, addr); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(p.Config)
	if err != nil {
		return err
	}
	mutating, validating, err := config.LoadWebhooks()
	if err != nil {
		return err
	}
	caBundle := p.CA.CertPEM()
	url := func(cc *admissionv1.WebhookClientConfig) {
		path := "/"
		if cc.Service != nil && cc.Service.Path != nil {
			path = *cc.Service.Path
		}
		u := "https://" + addr + path
		cc.Service, cc.URL, cc.CABundle = nil, &u, caBundle
	}
	for _, m := range mutating {
		for i := range m.Webhooks {
			url(&m.Webhooks[i].ClientConfig)
		}
		_ = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, m.Name, metav1.DeleteOptions{})
		if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, m, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	for _, v := range validating {
		for i := range v.Webhooks {
			url(&v.Webhooks[i].ClientConfig)
		}
		_ = cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, v.Name, metav1.DeleteOptions{})
		if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// TLSRouteCRD is a minimal Gateway API TLSRoute CRD (schema-less), for tests that need the
// admin cluster to serve the Gateway API.
func TLSRouteCRD() *apiextensionsv1.CustomResourceDefinition {
	preserve := true
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "tlsroutes.gateway.networking.k8s.io", Annotations: map[string]string{
			// The apiserver refuses *.k8s.io groups without an approval reference.
			"api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/1"}},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "gateway.networking.k8s.io", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "tlsroutes", Singular: "tlsroute", Kind: "TLSRoute", ListKind: "TLSRouteList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1alpha2", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}}}},
		},
	}
}
