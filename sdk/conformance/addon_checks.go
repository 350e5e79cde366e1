package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
)

// addonChecks run in order; later ones build on the identity and baseline renders of earlier ones.
var addonChecks = []addonCheck{
	{name: "start", description: "the plugin starts and completes the handshake",
		run: func(_ context.Context, r *addonRunner) (string, error) { return r.startPlugin() }},
	{name: "identity", description: "GetPluginInfo lists the addons, GetCapabilities answers", needs: []string{"start"}, run: checkAddonIdentity},
	{name: "probe", description: "Probe reports ready", needs: []string{"start"}, run: checkAddonProbe},
	{name: "render", description: "Render returns Kubernetes objects as JSON with apiVersion, kind and metadata.name, each object once", needs: []string{"identity"}, run: checkAddonRender},
	{name: "deterministic", description: "the same request renders identical bytes, whatever was rendered in between", needs: []string{"render"}, run: checkAddonDeterministic},
	{name: "image-overrides", description: "imageRepository and imageTag each change only their part of every image", needs: []string{"render"}, run: checkAddonImageOverrides},
	{name: "unknown-addon", description: "Render of an addon not served is INVALID_ARGUMENT naming addon", needs: []string{"identity"}, run: checkAddonUnknown},
	{name: "missing-tenant-parameters", description: "Render without a required tenant parameter is INVALID_ARGUMENT naming the field", needs: []string{"render"}, run: checkAddonMissingTenant},
	{name: "control-plane-additions", description: "control-plane additions are returned only with CONTROL_PLANE_ADDITIONS, and are well formed", needs: []string{"render"}, run: checkAddonControlPlane},
}

func checkAddonIdentity(ctx context.Context, r *addonRunner) (string, error) {
	info, err := r.plugin.GetPluginInfo(ctx)
	if err != nil {
		return "", err
	}
	r.report.Plugin = asReportInfo(info)
	switch {
	case info.Name == "":
		return "", errors.New("GetPluginInfo: empty name")
	case info.VendorVersion == "":
		return "", errors.New("GetPluginInfo: empty vendor_version")
	case len(info.Addons) == 0:
		return "", errors.New("GetPluginInfo: no addons")
	}
	for i, a := range info.Addons {
		if a == "" || slices.Contains(info.Addons[:i], a) {
			return "", fmt.Errorf("GetPluginInfo: addons %q has an empty or repeated entry", info.Addons)
		}
	}
	r.addons = slices.Clone(info.Addons)
	if len(r.cfg.Addons) > 0 {
		for _, a := range r.cfg.Addons {
			if !slices.Contains(info.Addons, a) {
				return "", fmt.Errorf("GetPluginInfo: plugin serves addons %q, the configuration asks for %q", info.Addons, a)
			}
		}
		r.addons = slices.Clone(r.cfg.Addons)
	}
	caps, err := r.plugin.Capabilities(ctx)
	if err != nil {
		return "", err
	}
	r.caps = caps
	names := make([]string, len(caps))
	for i, c := range caps {
		names[i] = c.String()
	}
	return fmt.Sprintf("%s %s serves addons %q with capabilities [%s]", info.Name, info.VendorVersion, info.Addons, strings.Join(names, ", ")), nil
}

// checkAddonProbe polls: a plugin may legitimately answer not-ready while it warms up.
func checkAddonProbe(ctx context.Context, r *addonRunner) (string, error) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		res, err := r.plugin.Probe(ctx)
		if err != nil {
			return "", fmt.Errorf("Probe: %w", err)
		}
		if res.Ready {
			return "ready", nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("Probe: still not ready (%s): %w", res.Message, ctx.Err())
		case <-tick.C:
		}
	}
}

// renderedObject is the part of a rendered object the kit reads.
type renderedObject struct {
	raw      map[string]any
	id       string // group/kind namespace/name
	describe string // Kind namespace/name
}

// decodeObjects parses every rendered object and checks its identity fields and uniqueness.
func decodeObjects(a string, objects [][]byte) ([]renderedObject, error) {
	out := make([]renderedObject, 0, len(objects))
	seen := map[string]int{}
	for i, b := range objects {
		var raw map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) || dec.Decode(&raw) != nil || dec.More() {
			return nil, fmt.Errorf("%s: object %d is not one JSON object (the kit reads JSON only): %.80q", a, i, b)
		}
		apiVersion, _ := raw["apiVersion"].(string)
		kind, _ := raw["kind"].(string)
		meta, _ := raw["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		ns, _ := meta["namespace"].(string)
		switch {
		case apiVersion == "":
			return nil, fmt.Errorf("%s: object %d has no apiVersion", a, i)
		case kind == "":
			return nil, fmt.Errorf("%s: object %d has no kind", a, i)
		case name == "":
			return nil, fmt.Errorf("%s: object %d (%s) has no metadata.name", a, i, kind)
		}
		group, _, ok := strings.Cut(apiVersion, "/")
		if !ok {
			group = ""
		}
		o := renderedObject{raw: raw, id: group + "/" + kind + " " + ns + "/" + name, describe: kind + " " + strings.TrimPrefix(ns+"/"+name, "/")}
		if j, dup := seen[o.id]; dup {
			return nil, fmt.Errorf("%s: objects %d and %d are both %s", a, j, i, o.describe)
		}
		seen[o.id] = i
		out = append(out, o)
	}
	return out, nil
}

func checkAddonRender(ctx context.Context, r *addonRunner) (string, error) {
	r.baseline = map[string]addon.RenderResult{}
	var notes []string
	for _, a := range r.addons {
		res, err := r.render(ctx, r.request(a, "", ""))
		if err != nil {
			return "", err
		}
		objs, err := decodeObjects(a, res.Objects)
		if err != nil {
			return "", err
		}
		if len(objs) == 0 && res.ControlPlane == nil {
			return "", fmt.Errorf("%s: Render returned neither objects nor control-plane additions", a)
		}
		r.baseline[a] = res
		kinds := make([]string, len(objs))
		for i, o := range objs {
			kinds[i] = o.describe
		}
		note := fmt.Sprintf("%s: %d objects (%s)", a, len(objs), strings.Join(kinds, ", "))
		if res.ControlPlane != nil {
			note += " and control-plane additions"
		}
		notes = append(notes, note)
	}
	return strings.Join(notes, "; "), nil
}

// sameResult compares two renders byte for byte and names the first difference.
func sameResult(a, b addon.RenderResult) error {
	if len(a.Objects) != len(b.Objects) {
		return fmt.Errorf("%d objects, then %d", len(a.Objects), len(b.Objects))
	}
	for i := range a.Objects {
		if !bytes.Equal(a.Objects[i], b.Objects[i]) {
			return fmt.Errorf("object %d differs:\n%s\nthen\n%s", i, a.Objects[i], b.Objects[i])
		}
	}
	if !reflect.DeepEqual(normalizeCP(a.ControlPlane), normalizeCP(b.ControlPlane)) {
		return fmt.Errorf("control-plane additions differ: %+v, then %+v", a.ControlPlane, b.ControlPlane)
	}
	return nil
}

// normalizeCP turns empty lists into nil: the wire does not tell them apart.
func normalizeCP(cp *addon.ControlPlaneAdditions) *addon.ControlPlaneAdditions {
	if cp == nil {
		return nil
	}
	c := *cp
	if len(c.Containers) == 0 {
		c.Containers = nil
	}
	if len(c.Volumes) == 0 {
		c.Volumes = nil
	}
	if len(c.APIServerExtraArgs) == 0 {
		c.APIServerExtraArgs = nil
	}
	if len(c.ServicePorts) == 0 {
		c.ServicePorts = nil
	}
	if len(c.APIServerVolumeMounts) == 0 {
		c.APIServerVolumeMounts = nil
	}
	if len(c.Files) == 0 {
		c.Files = nil
	}
	return &c
}

func checkAddonDeterministic(ctx context.Context, r *addonRunner) (string, error) {
	for _, a := range r.addons {
		again, err := r.render(ctx, r.request(a, "", ""))
		if err != nil {
			return "", err
		}
		if err := sameResult(r.baseline[a], again); err != nil {
			return "", fmt.Errorf("%s: two renders of the same request differ: %w", a, err)
		}
		// Something else in between, to catch state kept across calls.
		if _, err := r.render(ctx, r.request(a, overrideRepository, overrideTag)); err != nil {
			return "", err
		}
		third, err := r.render(ctx, r.request(a, "", ""))
		if err != nil {
			return "", err
		}
		if err := sameResult(r.baseline[a], third); err != nil {
			return "", fmt.Errorf("%s: the same request renders differently after another render: %w", a, err)
		}
	}
	return fmt.Sprintf("identical bytes for %q, three renders each", r.addons), nil
}

// image is a container image found in a render, with where it was found.
type image struct {
	where string
	ref   string
}

// splitImage splits a reference into name and tag; a digest reference keeps the digest as tag.
func splitImage(ref string) (name, tag string) {
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		return ref[:i], ref[i:]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// collectImages walks every rendered object and the control-plane containers, in a fixed order,
// for the images of containers, init containers and ephemeral containers.
func collectImages(a string, res addon.RenderResult) ([]image, error) {
	objs, err := decodeObjects(a, res.Objects)
	if err != nil {
		return nil, err
	}
	var out []image
	for _, o := range objs {
		walkContainers(o.raw, o.describe, &out)
	}
	if res.ControlPlane != nil {
		for i, c := range res.ControlPlane.Containers {
			var m map[string]any
			if err := json.Unmarshal(c, &m); err != nil {
				return nil, fmt.Errorf("%s: control-plane container %d is not JSON: %w", a, i, err)
			}
			name, _ := m["name"].(string)
			ref, _ := m["image"].(string)
			out = append(out, image{where: "control-plane container " + name, ref: ref})
		}
	}
	return out, nil
}

func walkContainers(v any, where string, out *[]image) {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "containers" || k == "initContainers" || k == "ephemeralContainers" {
				if list, ok := t[k].([]any); ok {
					for _, c := range list {
						if cm, ok := c.(map[string]any); ok {
							if ref, ok := cm["image"].(string); ok {
								name, _ := cm["name"].(string)
								*out = append(*out, image{where: where + " container " + name, ref: ref})
							}
						}
					}
					continue
				}
			}
			walkContainers(t[k], where, out)
		}
	case []any:
		for _, e := range t {
			walkContainers(e, where, out)
		}
	}
}

func checkAddonImageOverrides(ctx context.Context, r *addonRunner) (string, error) {
	total := 0
	for _, a := range r.addons {
		base, err := collectImages(a, r.baseline[a])
		if err != nil {
			return "", err
		}
		if len(base) == 0 {
			continue
		}
		total += len(base)
		for _, o := range []struct{ repo, tag string }{{overrideRepository, ""}, {"", overrideTag}, {overrideRepository, overrideTag}} {
			res, err := r.render(ctx, r.request(a, o.repo, o.tag))
			if err != nil {
				return "", err
			}
			got, err := collectImages(a, res)
			if err != nil {
				return "", err
			}
			if len(got) != len(base) {
				return "", fmt.Errorf("%s: with imageRepository=%q imageTag=%q the render has %d images instead of %d", a, o.repo, o.tag, len(got), len(base))
			}
			for i, g := range got {
				b := base[i]
				bName, bTag := splitImage(b.ref)
				gName, gTag := splitImage(g.ref)
				baseElem := bName[strings.LastIndex(bName, "/")+1:]
				gotElem := gName[strings.LastIndex(gName, "/")+1:]
				var problem string
				switch {
				case g.where != b.where:
					problem = fmt.Sprintf("images moved: %s became %s", b.where, g.where)
				case o.repo != "" && !strings.HasPrefix(gName, o.repo+"/"):
					problem = "imageRepository not honoured"
				case o.repo != "" && gotElem != baseElem:
					problem = fmt.Sprintf("imageRepository changed the image name %q", baseElem)
				case o.repo == "" && gName != bName:
					problem = "imageTag alone changed the repository"
				case o.tag != "" && gTag != o.tag:
					problem = "imageTag not honoured"
				case o.tag == "" && gTag != bTag:
					problem = "imageRepository alone changed the tag"
				}
				if problem != "" {
					return "", fmt.Errorf("%s: %s with imageRepository=%q imageTag=%q: %s is %q (default %q)", a, problem, o.repo, o.tag, g.where, g.ref, b.ref)
				}
			}
		}
	}
	if total == 0 {
		return "", skipf("no addon renders a container image")
	}
	return fmt.Sprintf("%d images: repository and tag overridden independently", total), nil
}

func checkAddonUnknown(ctx context.Context, r *addonRunner) (string, error) {
	_, err := r.plugin.Render(ctx, r.request(unknownAddonName, "", ""))
	return wantFieldError(err, "Render(unknown addon)", "addon")
}

// clearTenantField returns t with the named field (proto JSON name) emptied.
func clearTenantField(t addon.TenantParameters, field string) (addon.TenantParameters, error) {
	switch field {
	case "name":
		t.Name = ""
	case "namespace":
		t.Namespace = ""
	case "kubernetesVersion":
		t.KubernetesVersion = ""
	case "clusterDomain":
		t.ClusterDomain = ""
	case "serviceCidrs":
		t.ServiceCIDRs = nil
	case "podCidrs":
		t.PodCIDRs = nil
	case "dnsServiceIps":
		t.DNSServiceIPs = nil
	case "controlPlaneEndpoint.host":
		t.ControlPlaneEndpoint.Host = ""
	case "controlPlaneEndpoint.port":
		t.ControlPlaneEndpoint.Port = 0
	default:
		return t, fmt.Errorf("unknown tenant field %q", field)
	}
	return t, nil
}

func checkAddonMissingTenant(ctx context.Context, r *addonRunner) (string, error) {
	var notes []string
	for _, a := range r.addons {
		fields, listed := r.cfg.RequiredTenantFields[a]
		if !listed || len(fields) > 0 {
			req := r.request(a, "", "")
			req.Tenant = addon.TenantParameters{}
			_, err := r.plugin.Render(ctx, req)
			var fe *sdk.FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, "tenant") {
				return "", fmt.Errorf("%s: Render(empty tenant): want INVALID_ARGUMENT naming a tenant.* field, got %v", a, err)
			}
			notes = append(notes, fmt.Sprintf("%s: empty tenant: %v", a, fe))
		}
		for _, f := range fields {
			req := r.request(a, "", "")
			req.Tenant, _ = clearTenantField(req.Tenant, f)
			_, err := r.plugin.Render(ctx, req)
			note, err := wantFieldError(err, fmt.Sprintf("%s: Render(no %s)", a, f), "tenant."+f)
			if err != nil {
				return "", err
			}
			notes = append(notes, note)
		}
	}
	if len(notes) == 0 {
		return "", skipf("no addon requires tenant parameters")
	}
	return strings.Join(notes, "; "), nil
}

func checkAddonControlPlane(_ context.Context, r *addonRunner) (string, error) {
	announced := slices.Contains(r.caps, addon.CapabilityControlPlaneAdditions)
	var with []string
	for _, a := range r.addons {
		cp := r.baseline[a].ControlPlane
		if cp == nil {
			continue
		}
		if !announced {
			return "", fmt.Errorf("%s: Render returned control-plane additions but the plugin does not announce CONTROL_PLANE_ADDITIONS", a)
		}
		if err := checkAdditions(cp); err != nil {
			return "", fmt.Errorf("%s: %w", a, err)
		}
		with = append(with, a)
	}
	switch {
	case announced && len(with) == 0:
		return "", fmt.Errorf("the plugin announces CONTROL_PLANE_ADDITIONS but no render of %q returned any", r.addons)
	case !announced:
		return "no control-plane additions, none announced", nil
	}
	return fmt.Sprintf("well-formed control-plane additions from %q", with), nil
}

// checkAdditions checks that containers and volumes are JSON core/v1 objects with names, that
// every volume a container or kube-apiserver mounts is among the returned volumes, that
// arguments are flags, that Service ports are valid and that files have absolute, unique paths;
// names are unique.
func checkAdditions(cp *addon.ControlPlaneAdditions) error {
	if len(cp.Containers) == 0 && len(cp.Volumes) == 0 && len(cp.APIServerExtraArgs) == 0 && len(cp.ServicePorts) == 0 &&
		len(cp.APIServerVolumeMounts) == 0 && len(cp.Files) == 0 {
		return errors.New("empty control-plane additions: return nil instead")
	}
	volumes := map[string]bool{}
	for i, b := range cp.Volumes {
		var v struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(b, &v); err != nil || v.Name == "" {
			return fmt.Errorf("control-plane volume %d is not a JSON core/v1 Volume with a name: %.80q", i, b)
		}
		if volumes[v.Name] {
			return fmt.Errorf("control-plane volume %q returned twice", v.Name)
		}
		volumes[v.Name] = true
	}
	containers := map[string]bool{}
	for i, b := range cp.Containers {
		var c struct {
			Name         string `json:"name"`
			Image        string `json:"image"`
			VolumeMounts []struct {
				Name      string `json:"name"`
				MountPath string `json:"mountPath"`
			} `json:"volumeMounts"`
		}
		if err := json.Unmarshal(b, &c); err != nil || c.Name == "" || c.Image == "" {
			return fmt.Errorf("control-plane container %d is not a JSON core/v1 Container with name and image: %.80q", i, b)
		}
		if containers[c.Name] {
			return fmt.Errorf("control-plane container %q returned twice", c.Name)
		}
		containers[c.Name] = true
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] || m.MountPath == "" {
				return fmt.Errorf("control-plane container %q mounts volume %q at %q, which is not among the returned volumes", c.Name, m.Name, m.MountPath)
			}
		}
	}
	for i, b := range cp.APIServerVolumeMounts {
		var m struct {
			Name      string `json:"name"`
			MountPath string `json:"mountPath"`
		}
		if err := json.Unmarshal(b, &m); err != nil || m.Name == "" || !path.IsAbs(m.MountPath) {
			return fmt.Errorf("apiserver volume mount %d is not a JSON core/v1 VolumeMount with a name and an absolute mountPath: %.80q", i, b)
		}
		if !volumes[m.Name] {
			return fmt.Errorf("kube-apiserver mounts volume %q at %q, which is not among the returned volumes", m.Name, m.MountPath)
		}
	}
	files := map[string]bool{}
	for _, f := range cp.Files {
		switch {
		case !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/":
			return fmt.Errorf("file %q: the path must be absolute and clean", f.Path)
		case files[f.Path]:
			return fmt.Errorf("file %q returned twice", f.Path)
		}
		files[f.Path] = true
	}
	for _, a := range cp.APIServerExtraArgs {
		if !strings.HasPrefix(a, "--") || len(a) < 3 {
			return fmt.Errorf("apiserver argument %q is not --flag or --flag=value", a)
		}
	}
	ports := map[string]bool{}
	for _, p := range cp.ServicePorts {
		switch {
		case p.Name == "" || ports[p.Name]:
			return fmt.Errorf("Service port %+v: empty or repeated name", p)
		case p.Port < 1 || p.Port > 65535 || p.TargetPort < 0 || p.TargetPort > 65535:
			return fmt.Errorf("Service port %q: port %d or target port %d out of range", p.Name, p.Port, p.TargetPort)
		case !slices.Contains([]string{"", "TCP", "UDP", "SCTP"}, p.Protocol):
			return fmt.Errorf("Service port %q: protocol %q is not TCP, UDP or SCTP", p.Name, p.Protocol)
		}
		ports[p.Name] = true
	}
	return nil
}
