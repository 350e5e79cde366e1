package konnectivity

import (
	"bytes"
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
)

// Parameter keys: RenderRequest.Params is spec.addons.konnectivity of the TenantControlPlane
// as JSON, {"server": {...}, "agent": {...}}, every key optional.
const (
	ParamServer = "server"
	ParamAgent  = "agent"

	// server.*
	ParamServerPort      = "port"      // integer, 1024..49151, default 8132: the agents' port
	ParamServerImage     = "image"     // default DefaultServerImage
	ParamServerVersion   = "version"   // image tag, default DefaultVersion
	ParamServerResources = "resources" // core/v1 ResourceRequirements of the sidecar
	ParamServerExtraArgs = "extraArgs" // ["--flag=value", ...], override the rendered flags by name

	// agent.*
	ParamAgentImage       = "image"       // default DefaultAgentImage
	ParamAgentVersion     = "version"     // image tag, default DefaultVersion
	ParamAgentTolerations = "tolerations" // []core/v1 Toleration, default DefaultTolerations
	ParamAgentHostNetwork = "hostNetwork" // bool, default false
	ParamAgentExtraArgs   = "extraArgs"   // ["--flag=value", ...], override the rendered flags by name
	ParamAgentMode        = "mode"        // DaemonSet (default) or Deployment
	ParamAgentReplicas    = "replicas"    // Deployment: required, >= 1; DaemonSet: absent or 0
)

// Defaults, those of the TenantControlPlane CRD.
const (
	DefaultServerImage = "registry.k8s.io/kas-network-proxy/proxy-server"
	DefaultAgentImage  = "registry.k8s.io/kas-network-proxy/proxy-agent"
	DefaultVersion     = "v0.34.0"
	DefaultServerPort  = 8132

	ModeDaemonSet  = "DaemonSet"
	ModeDeployment = "Deployment"
)

// DefaultTolerations let the agent run on nodes reserved for critical addons.
func DefaultTolerations() []corev1.Toleration {
	return []corev1.Toleration{{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists}}
}

// input is a validated request.
type input struct {
	tenant       string
	host         string
	port         int32
	serverImage  string
	serverArgs   []string
	resources    corev1.ResourceRequirements
	agentImage   string
	agentArgs    []string
	tolerations  []corev1.Toleration
	hostNetwork  bool
	mode         string
	replicas     int32
	serverHealth int32
	agentHealth  int32
}

// knownKeys checks that m has only the given keys, naming the first unknown one (sorted).
func knownKeys(m map[string]any, path string, known ...string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return sdk.InvalidField(path+"."+k, "unknown parameter (known: %s)", strings.Join(known, ", "))
		}
	}
	return nil
}

func object(v any, path string) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, sdk.InvalidField(path, "must be an object, not %s", addon.DescribeValue(v))
	}
	return m, nil
}

func stringParam(m map[string]any, key, path, def string) (string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", sdk.InvalidField(path+"."+key, "must be a string, not %s", addon.DescribeValue(v))
	}
	if s == "" {
		return def, nil
	}
	if strings.ContainsAny(s, " \t\n") {
		return "", sdk.InvalidField(path+"."+key, "%q contains white space", s)
	}
	return s, nil
}

// decodeStrict decodes a JSON-like value into a typed one, refusing unknown fields.
func decodeStrict(v any, path string, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return sdk.InvalidField(path, "%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return sdk.InvalidField(path, "%v", err)
	}
	return nil
}

func extraArgs(m map[string]any, key, path string) ([]string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, sdk.InvalidField(path+"."+key, "must be a list of \"--flag=value\" strings, not %s", addon.DescribeValue(v))
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok || !strings.HasPrefix(s, "--") || len(s) < 3 || strings.HasPrefix(s, "---") {
			return nil, sdk.InvalidField(path+"."+key+"["+strconv.Itoa(i)+"]", "must be \"--flag\" or \"--flag=value\", not %s", addon.DescribeValue(e))
		}
		out = append(out, s)
	}
	return out, nil
}

// image composes <name>:<tag>: the tenant's imageRepository, when set, replaces the repository of
// name (its last path element stays), and the tenant's imageTag, when set, replaces tag.
func image(name, tag string, t addon.TenantParameters) string {
	if r := strings.TrimSuffix(t.ImageRepository, "/"); r != "" {
		name = r + "/" + name[strings.LastIndex(name, "/")+1:]
	}
	if t.ImageTag != "" {
		tag = t.ImageTag
	}
	return name + ":" + tag
}

func parse(req addon.RenderRequest) (input, error) {
	if req.Addon != AddonName {
		return input{}, sdk.InvalidField("addon", "this plugin serves %q, not %q", AddonName, req.Addon)
	}
	t := req.Tenant
	in := input{tenant: t.Name, host: strings.Trim(t.ControlPlaneEndpoint.Host, "[]")}
	switch {
	case in.tenant == "":
		return input{}, sdk.InvalidField("tenant.name", "required: it names the konnectivity Secrets of the control plane")
	case in.host == "":
		return input{}, sdk.InvalidField("tenant.controlPlaneEndpoint.host", "required: the agents connect there")
	case strings.ContainsAny(in.host, "/ \t\n\"'") || strings.Contains(in.host, ":") && net.ParseIP(in.host) == nil:
		return input{}, sdk.InvalidField("tenant.controlPlaneEndpoint.host", "%q is not a host name or address", t.ControlPlaneEndpoint.Host)
	}

	if err := knownKeys(req.Params, "params", ParamServer, ParamAgent); err != nil {
		return input{}, err
	}
	server, err := object(req.Params[ParamServer], "params.server")
	if err != nil {
		return input{}, err
	}
	agent, err := object(req.Params[ParamAgent], "params.agent")
	if err != nil {
		return input{}, err
	}
	if err := parseServer(&in, server, t); err != nil {
		return input{}, err
	}
	if err := parseAgent(&in, agent, t); err != nil {
		return input{}, err
	}
	return in, nil
}

func parseServer(in *input, m map[string]any, t addon.TenantParameters) error {
	const path = "params.server"
	if err := knownKeys(m, path, ParamServerPort, ParamServerImage, ParamServerVersion, ParamServerResources, ParamServerExtraArgs); err != nil {
		return err
	}
	in.port = DefaultServerPort
	if v, ok := m[ParamServerPort]; ok && v != nil {
		p, err := addon.IntParam(v, path+"."+ParamServerPort, 1)
		if err != nil {
			return err
		}
		// konnectivity-server refuses reserved and ephemeral ports for the agent port.
		if p < 1024 || p > 49151 || p == adminPort || p == healthPort {
			return sdk.InvalidField(path+"."+ParamServerPort, "%d: konnectivity-server listens for agents on 1024-49151, and %d and %d are its admin and health ports", p, adminPort, healthPort)
		}
		in.port = p
	}
	name, err := stringParam(m, ParamServerImage, path, DefaultServerImage)
	if err != nil {
		return err
	}
	tag, err := stringParam(m, ParamServerVersion, path, DefaultVersion)
	if err != nil {
		return err
	}
	in.serverImage = image(name, tag, t)
	if v, ok := m[ParamServerResources]; ok && v != nil {
		if err := decodeStrict(v, path+"."+ParamServerResources, &in.resources); err != nil {
			return err
		}
	}
	extra, err := extraArgs(m, ParamServerExtraArgs, path)
	if err != nil {
		return err
	}
	in.serverArgs = mergeArgs(serverArgs(in.port), extra)
	in.serverHealth, err = portFlag(in.serverArgs, "--health-port", path+"."+ParamServerExtraArgs)
	return err
}

func parseAgent(in *input, m map[string]any, t addon.TenantParameters) error {
	const path = "params.agent"
	if err := knownKeys(m, path, ParamAgentImage, ParamAgentVersion, ParamAgentTolerations, ParamAgentHostNetwork, ParamAgentExtraArgs, ParamAgentMode, ParamAgentReplicas); err != nil {
		return err
	}
	name, err := stringParam(m, ParamAgentImage, path, DefaultAgentImage)
	if err != nil {
		return err
	}
	tag, err := stringParam(m, ParamAgentVersion, path, DefaultVersion)
	if err != nil {
		return err
	}
	in.agentImage = image(name, tag, t)

	in.tolerations = DefaultTolerations()
	if v, ok := m[ParamAgentTolerations]; ok && v != nil {
		in.tolerations = []corev1.Toleration{}
		if err := decodeStrict(v, path+"."+ParamAgentTolerations, &in.tolerations); err != nil {
			return err
		}
	}
	if v, ok := m[ParamAgentHostNetwork]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			return sdk.InvalidField(path+"."+ParamAgentHostNetwork, "must be true or false, not %s", addon.DescribeValue(v))
		}
		in.hostNetwork = b
	}

	mode, err := stringParam(m, ParamAgentMode, path, ModeDaemonSet)
	if err != nil {
		return err
	}
	if mode != ModeDaemonSet && mode != ModeDeployment {
		return sdk.InvalidField(path+"."+ParamAgentMode, "must be %s or %s, not %q", ModeDaemonSet, ModeDeployment, mode)
	}
	in.mode = mode
	if v, ok := m[ParamAgentReplicas]; ok && v != nil {
		if in.replicas, err = addon.IntParam(v, path+"."+ParamAgentReplicas, 0); err != nil {
			return err
		}
	}
	switch {
	case mode == ModeDeployment && in.replicas == 0:
		return sdk.InvalidField(path+"."+ParamAgentReplicas, "must be at least 1 when mode is Deployment")
	case mode == ModeDaemonSet && in.replicas != 0:
		return sdk.InvalidField(path+"."+ParamAgentReplicas, "must be 0 or unset when mode is DaemonSet, not %d", in.replicas)
	}

	extra, err := extraArgs(m, ParamAgentExtraArgs, path)
	if err != nil {
		return err
	}
	in.agentArgs = mergeArgs(agentArgs(in.host, in.port), extra)
	in.agentHealth, err = portFlag(in.agentArgs, "--health-server-port", path+"."+ParamAgentExtraArgs)
	return err
}

// mergeArgs overrides flags by name: a flag of extra replaces the rendered one in place, new
// flags follow in extra's order.
func mergeArgs(rendered, extra []string) []string {
	out := slices.Clone(rendered)
	flagName := func(a string) string { n, _, _ := strings.Cut(a, "="); return n }
	for _, e := range extra {
		i := slices.IndexFunc(out, func(a string) bool { return flagName(a) == flagName(e) })
		if i >= 0 {
			out[i] = e
		} else {
			out = append(out, e)
		}
	}
	return out
}

// portFlag reads the port of a flag in args, for the probes to follow an override.
func portFlag(args []string, flag, field string) (int32, error) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			p, err := strconv.ParseInt(v, 10, 32)
			if err != nil || p < 1 || p > 65535 {
				return 0, sdk.InvalidField(field, "%s: %q is not a port", flag, v)
			}
			return int32(p), nil
		}
	}
	return 0, sdk.InvalidField(field, "%s has no value", flag)
}
