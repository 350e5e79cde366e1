// Package nodeagent plays the kubelet's part of the kubeadm node join protocol against a tenant
// kube-apiserver: token discovery of cluster-info, TLS bootstrap through a CSR, registration of
// the Node with its Lease and Ready heartbeats, and a kubelet HTTPS port the apiserver can call.
// It runs no pods; it lets a test see a real join go through a tenant control plane.
package nodeagent

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

// DefaultKubeletPort is the kubelet's HTTPS port, the one the apiserver calls for logs and exec.
const DefaultKubeletPort = 10250

// Options are the agent's inputs, named after the flags of `kamaji local node-agent`.
type Options struct {
	Server        string   // --server: https://HOST:PORT of the tenant apiserver
	Token         string   // --token: bootstrap token ID.SECRET
	CACertHashes  []string // --discovery-token-ca-cert-hash: sha256:HEX pins of the tenant CA
	JoinCommand   string   // --join-command: a whole `kubeadm join ...` line instead of the three above
	NodeName      string   // --node-name
	NodeIP        string   // --node-ip
	CertDir       string   // --cert-dir
	Listen        string   // --listen: kubelet API address; default NODE-IP:10250
	Timeout       time.Duration
	PollInterval  time.Duration // how often discovery looks for the signature; default 1 s
	Out           io.Writer     // progress and request lines
	parsedTokenID string
	parsedSecret  string
}

// Complete fills the three join values from --join-command, applies defaults and checks every
// value, so that a mistake is reported before anything touches the network. Errors name the flag.
func (o *Options) Complete() error {
	if o.JoinCommand != "" {
		if o.Server != "" || o.Token != "" || len(o.CACertHashes) > 0 {
			return fmt.Errorf("--join-command replaces --server, --token and --discovery-token-ca-cert-hash: give one or the other")
		}
		j, err := ParseJoinCommand(o.JoinCommand)
		if err != nil {
			return fmt.Errorf("--join-command: %v", err)
		}
		o.Server, o.Token, o.CACertHashes = j.Server, j.Token, j.CACertHashes
	}
	if o.Server == "" {
		return fmt.Errorf("--server is required (or --join-command)")
	}
	server, err := normalizeServer(o.Server)
	if err != nil {
		return fmt.Errorf("--server: %v", err)
	}
	o.Server = server
	if o.Token == "" {
		return fmt.Errorf("--token is required (or --join-command)")
	}
	if o.parsedTokenID, o.parsedSecret, err = parseToken(o.Token); err != nil {
		return fmt.Errorf("--token: %v", err)
	}
	if len(o.CACertHashes) == 0 {
		return fmt.Errorf("--discovery-token-ca-cert-hash is required (or --join-command)")
	}
	for i, h := range o.CACertHashes {
		if o.CACertHashes[i], err = normalizePin(h); err != nil {
			return fmt.Errorf("--discovery-token-ca-cert-hash: %v", err)
		}
	}
	if o.NodeName == "" {
		return fmt.Errorf("--node-name is required")
	}
	if errs := validation.IsDNS1123Subdomain(o.NodeName); len(errs) > 0 {
		return fmt.Errorf("--node-name %q: %s", o.NodeName, errs[0])
	}
	if o.NodeIP == "" {
		return fmt.Errorf("--node-ip is required")
	}
	if net.ParseIP(o.NodeIP) == nil {
		return fmt.Errorf("--node-ip: invalid address %q", o.NodeIP)
	}
	if o.CertDir == "" {
		return fmt.Errorf("--cert-dir is required")
	}
	if o.Listen == "" {
		o.Listen = net.JoinHostPort(o.NodeIP, strconv.Itoa(DefaultKubeletPort))
	}
	if _, port, err := net.SplitHostPort(o.Listen); err != nil {
		return fmt.Errorf("--listen: %v", err)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("--listen: invalid port %q", port)
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", o.Timeout)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return nil
}

// JoinValues are the three values of a `kubeadm join` line the agent needs.
type JoinValues struct {
	Server       string
	Token        string
	CACertHashes []string
}

// ParseJoinCommand reads the line `kubeadm token create --print-join-command` prints:
//
//	kubeadm join HOST:PORT --token ID.SECRET --discovery-token-ca-cert-hash sha256:HEX
//
// Flags may also be written --flag=value, and the backslash continuations of `kubeadm init`'s
// output are ignored. Flags the agent has no use for (--control-plane, ...) are refused rather
// than silently dropped, because they mean a different kind of join.
func ParseJoinCommand(line string) (JoinValues, error) {
	var j JoinValues
	var fields []string
	for _, f := range strings.Fields(line) {
		if f != `\` {
			fields = append(fields, f)
		}
	}
	if len(fields) < 2 || fields[0] != "kubeadm" || fields[1] != "join" {
		return j, fmt.Errorf("expected a line starting with \"kubeadm join\"")
	}
	args := fields[2:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			if j.Server != "" {
				return j, fmt.Errorf("two API server endpoints: %q and %q", j.Server, a)
			}
			j.Server = a
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		switch name {
		case "token", "discovery-token", "discovery-token-ca-cert-hash":
		default:
			return j, fmt.Errorf("unsupported flag --%s", name)
		}
		if !hasValue {
			if i+1 >= len(args) {
				return j, fmt.Errorf("--%s has no value", name)
			}
			i++
			value = args[i]
		}
		switch name {
		case "token", "discovery-token":
			j.Token = value
		case "discovery-token-ca-cert-hash":
			j.CACertHashes = append(j.CACertHashes, value)
		}
	}
	if j.Server == "" {
		return j, fmt.Errorf("no API server endpoint")
	}
	if _, err := normalizeServer(j.Server); err != nil {
		return j, err
	}
	if j.Token == "" {
		return j, fmt.Errorf("no --token")
	}
	if _, _, err := parseToken(j.Token); err != nil {
		return j, err
	}
	if len(j.CACertHashes) == 0 {
		return j, fmt.Errorf("no --discovery-token-ca-cert-hash")
	}
	for i, h := range j.CACertHashes {
		var err error
		if j.CACertHashes[i], err = normalizePin(h); err != nil {
			return j, err
		}
	}
	return j, nil
}

// normalizeServer turns kubeadm's bare HOST:PORT into an https URL and refuses anything that is
// not one, since a path or plain http would not reach the apiserver the way kubeadm does.
func normalizeServer(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("invalid endpoint %q: %v", s, err)
	}
	if u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", fmt.Errorf("invalid endpoint %q: want https://HOST:PORT", s)
	}
	return "https://" + u.Host, nil
}

// parseToken splits a bootstrap token into its public id and its secret.
func parseToken(t string) (id, secret string, err error) {
	if !bootstraputil.IsValidBootstrapToken(t) {
		return "", "", fmt.Errorf("token %q is not of the form [a-z0-9]{6}.[a-z0-9]{16}", redactToken(t))
	}
	id, secret, _ = strings.Cut(t, ".")
	return id, secret, nil
}

// redactToken keeps the secret half of a token out of error messages and logs.
func redactToken(t string) string {
	if id, _, ok := strings.Cut(t, "."); ok {
		return id + ".<secret>"
	}
	if len(t) > 6 {
		return t[:6] + "..."
	}
	return t
}

// normalizePin checks a --discovery-token-ca-cert-hash value and lowercases its hex, so that it
// compares equal to PublicKeyPin's output.
func normalizePin(p string) (string, error) {
	hexPart, ok := strings.CutPrefix(p, "sha256:")
	if !ok {
		return "", fmt.Errorf("CA cert hash %q must start with \"sha256:\"", p)
	}
	b, err := hex.DecodeString(hexPart)
	if err != nil || len(b) != 32 {
		return "", fmt.Errorf("CA cert hash %q must be sha256: followed by 64 hex digits", p)
	}
	return "sha256:" + hex.EncodeToString(b), nil
}

// jwsKey is the cluster-info data key the bootstrap signer writes for a token.
func jwsKey(tokenID string) string { return bootstrapapi.JWSSignatureKeyPrefix + tokenID }
