package tenantcontrolplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/controlplane"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
)

// Reasons of the AddonsReady condition.
const (
	ReasonAddonRenderFailed  = "AddonRenderFailed"
	ReasonAddonInvalid       = "AddonParametersInvalid"
	ReasonAddonAdditions     = "AddonControlPlaneAdditionsInvalid"
	ReasonAddonApplyFailed   = "AddonApplyFailed"
	ReasonAddonPruneFailed   = "AddonPruneFailed"
	ReasonAddonCustomization = "AddonCustomizationInvalid"
	ReasonAddonsApplied      = "AddonsApplied"
	ReasonNoAddons           = "NoAddons"
)

// AddonFilesVolume is the control-plane pod volume of the addon-files ConfigMap.
const AddonFilesVolume = "addon-files"

// AddonFilesConfigMapName holds the files addons add to kube-apiserver.
func AddonFilesConfigMapName(tcp string) string { return tcp + "-addon-files" }

// stepAddonRender renders every enabled addon through its plugin, once per pass: the tenant
// objects are applied by stepAddons, the control-plane additions go into the Deployment and
// Service. Any failure stops the pass before the Deployment: a control plane must never be
// rolled without the additions of an addon that could not be rendered.
func stepAddonRender(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionAddonsReady
	specs, err := enabledAddons(p.tcp)
	if err != nil {
		return fail(cond, ReasonAddonInvalid, err)
	}
	p.renders = map[string]addon.RenderResult{}
	for _, a := range specs {
		plugin, st, err := r.Plugins.Addon(ctx, a.name)
		if err != nil {
			return pluginFailure(cond, fmt.Errorf("addon %s: %w", a.name, err))
		}
		tp, err := tenantParameters(p.tcp, p.endpoint, a)
		if err != nil {
			return fail(cond, ReasonAddonRenderFailed, fmt.Errorf("addon %s: %w", a.name, err))
		}
		cctx, cancel := context.WithTimeout(ctx, r.addonCallTimeout())
		res, err := plugin.Render(cctx, addon.RenderRequest{Addon: a.name, Tenant: tp, Params: a.params})
		cancel()
		if err != nil {
			var fe *sdk.FieldError
			if errors.As(err, &fe) {
				return fail(cond, ReasonAddonInvalid, fmt.Errorf("addon %s: %w", a.name, err))
			}
			return fail(cond, ReasonAddonRenderFailed, fmt.Errorf("addon %s: %w", a.name, err))
		}
		if res.ControlPlane != nil && !slices.Contains(st.Capabilities, addon.CapabilityControlPlaneAdditions) {
			return failf(cond, ReasonAddonAdditions, "addon %s: the plugin returned control-plane additions without announcing CONTROL_PLANE_ADDITIONS", a.name)
		}
		p.renders[a.name] = res
	}
	if err := mergeAdditions(p); err != nil {
		return fail(cond, ReasonAddonAdditions, err)
	}
	return nil
}

// mergeAdditions decodes the control-plane additions of every render into the Deployment
// builder's input, the Service ports and the addon-files ConfigMap data (each file mounted
// read-only at its path in kube-apiserver).
func mergeAdditions(p *pass) error {
	p.additions = controlplane.PodAdditions{}
	p.addonFiles = map[string][]byte{}
	p.addonPorts = map[string][]corev1.ServicePort{}
	names := make([]string, 0, len(p.renders))
	for n := range p.renders {
		names = append(names, n)
	}
	sort.Strings(names)
	paths := map[string]string{}
	for _, name := range names {
		cp := p.renders[name].ControlPlane
		if cp == nil {
			continue
		}
		containers := make([]corev1.Container, 0, len(cp.Containers))
		for i, b := range cp.Containers {
			var c corev1.Container
			if err := json.Unmarshal(b, &c); err != nil {
				return fmt.Errorf("addon %s: container %d: %w", name, i, err)
			}
			containers = append(containers, c)
		}
		if name == AddonKonnectivity {
			if err := konnectivityServerSecurityContext(p.tcp, containers); err != nil {
				return err
			}
		}
		p.additions.Containers = append(p.additions.Containers, containers...)
		for i, b := range cp.Volumes {
			var v corev1.Volume
			if err := json.Unmarshal(b, &v); err != nil {
				return fmt.Errorf("addon %s: volume %d: %w", name, i, err)
			}
			if v.Name == AddonFilesVolume {
				return fmt.Errorf("addon %s: volume name %q is the core's", name, v.Name)
			}
			p.additions.Volumes = append(p.additions.Volumes, v)
		}
		for i, b := range cp.APIServerVolumeMounts {
			var m corev1.VolumeMount
			if err := json.Unmarshal(b, &m); err != nil {
				return fmt.Errorf("addon %s: kube-apiserver volume mount %d: %w", name, i, err)
			}
			p.additions.APIServerVolumeMounts = append(p.additions.APIServerVolumeMounts, m)
		}
		p.additions.APIServerArgs = append(p.additions.APIServerArgs, cp.APIServerExtraArgs...)
		for _, f := range cp.Files {
			if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
				return fmt.Errorf("addon %s: file %q: the path must be absolute and clean", name, f.Path)
			}
			if other, dup := paths[f.Path]; dup {
				return fmt.Errorf("addon %s: file %s is also returned by addon %s", name, f.Path, other)
			}
			paths[f.Path] = name
			addAPIServerFile(p, f.Path, f.Content)
		}
		for _, sp := range cp.ServicePorts {
			protocol := corev1.Protocol(sp.Protocol)
			if protocol == "" {
				protocol = corev1.ProtocolTCP
			}
			target := sp.TargetPort
			if target == 0 {
				target = sp.Port
			}
			p.addonPorts[name] = append(p.addonPorts[name], corev1.ServicePort{
				Name: sp.Name, Port: sp.Port, TargetPort: intstr.FromInt32(target), Protocol: protocol,
			})
		}
	}
	return nil
}

// addAPIServerFile adds a file to the addon-files ConfigMap and mounts it read-only at path in
// kube-apiserver (by subPath: a change rolls the pods, see stepAddonFiles). The caller makes
// sure that path is not taken.
func addAPIServerFile(p *pass, path string, content []byte) {
	key := fileKey(path)
	p.addonFiles[key] = content
	p.additions.APIServerVolumeMounts = append(p.additions.APIServerVolumeMounts, corev1.VolumeMount{Name: AddonFilesVolume, MountPath: path, SubPath: key, ReadOnly: true})
	keys := make([]corev1.KeyToPath, 0, len(p.addonFiles))
	for k := range p.addonFiles {
		keys = append(keys, corev1.KeyToPath{Key: k, Path: k})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Key < keys[j].Key })
	mode := int32(0o444)
	vol := corev1.Volume{Name: AddonFilesVolume, VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: AddonFilesConfigMapName(p.tcp.Name)},
			Items:                keys, DefaultMode: &mode,
		},
	}}
	for i := range p.additions.Volumes {
		if p.additions.Volumes[i].Name == AddonFilesVolume {
			p.additions.Volumes[i] = vol
			return
		}
	}
	p.additions.Volumes = append(p.additions.Volumes, vol)
}

var notKeyChar = regexp.MustCompile(`[^-._a-zA-Z0-9]`)

// fileKey is a stable ConfigMap key for a file path: its base name, made a valid key, and a
// hash of the whole path so that two files of the same name do not collide.
func fileKey(p string) string {
	sum := sha256.Sum256([]byte(p))
	base := strings.Trim(notKeyChar.ReplaceAllString(path.Base(p), "_"), ".")
	if base == "" {
		base = "file"
	}
	return hex.EncodeToString(sum[:4]) + "-" + base
}
