package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

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
		// Established is not yet served: discovery (which a client's REST mapper reads) learns a
		// new CRD a moment later, and a manager started in that moment fails with "no matches for kind".
		gk := schema.GroupKind{Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind}
		if err := poll(ctx, nil, "CRD "+name+" in discovery", func() bool {
			groups, err := restmapper.GetAPIGroupResources(cs.Discovery())
			if err != nil {
				return false
			}
			_, err = restmapper.NewDiscoveryRESTMapper(groups).RESTMapping(gk)
			return err == nil
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

// Gateway API release channels: the CRDs of each are in the module's config/crd/<channel>.
const (
	GatewayStandard     = "standard"
	GatewayExperimental = "experimental"
)

// GatewayAPICRDs are the real CRDs of a Gateway API channel, read from the module core is
// built with (sigs.k8s.io/gateway-api in core/go.mod, in the module cache). Other documents
// (the channel's safe-upgrades ValidatingAdmissionPolicy) are left out.
func GatewayAPICRDs(channel string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	dir, err := gatewayAPIDir()
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "config", "crd", channel, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no Gateway API %s channel in %s", channel, dir)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := k8syaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if doc["kind"] != "CustomResourceDefinition" {
				continue
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(doc, crd); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			crds = append(crds, crd)
		}
	}
	return crds, nil
}

// InstallGatewayAPI installs a channel's CRDs (replacing those of the other channel) and waits
// until each is established.
func (p *Plane) InstallGatewayAPI(ctx context.Context, channel string) error {
	crds, err := GatewayAPICRDs(channel)
	if err != nil {
		return err
	}
	cs, err := apiextensionsclient.NewForConfig(p.Config)
	if err != nil {
		return err
	}
	return InstallCRDs(ctx, cs, crds...)
}

// gatewayAPIDir is the gateway-api module's folder, as core's build list resolves it.
func gatewayAPIDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	const mod = "sigs.k8s.io/gateway-api"
	list := exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.Version}}", mod)
	list.Dir = filepath.Join(root, "core")
	out, err := list.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", mod, err)
	}
	dir, version, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if dir != "" {
		return dir, nil
	}
	// Not extracted yet (core's build only needs the packages it imports): download it.
	dl := exec.Command("go", "mod", "download", "-json", mod+"@"+version)
	dl.Dir = list.Dir
	out, err = dl.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", mod, version, err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: no folder in %q", mod, version, out)
	}
	return info.Dir, nil
}
