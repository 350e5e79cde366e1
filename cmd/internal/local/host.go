package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/openhcp/kamaji/cmd/internal/local/node"
)

// sysctls the plane changes (itself or through kube-proxy); down puts them back.
var sysctls = []string{
	"net/ipv4/ip_forward",
	"net/ipv4/conf/all/route_localnet",
	"net/bridge/bridge-nf-call-iptables",
	"net/bridge/bridge-nf-call-ip6tables",
	"net/netfilter/nf_conntrack_max",
	"net/netfilter/nf_conntrack_tcp_timeout_established",
	"net/netfilter/nf_conntrack_tcp_timeout_close_wait",
	// A worker's kubelet (protectKernelDefaults off) sets these host-wide.
	"vm/overcommit_memory",
	"kernel/panic",
	"kernel/panic_on_oops",
}

// hostBefore is the host as it was before the first `up`: what down restores.
type hostBefore struct {
	Sysctls   map[string]string `json:"sysctls"`
	NftTables []string          `json:"nftTables"`
	// RunNetns: whether /run/netns existed, and was a mount point (ip netns makes it one).
	RunNetnsExisted bool `json:"runNetnsExisted"`
	RunNetnsMounted bool `json:"runNetnsMounted"`
}

func (p *Plane) hostBeforePath() string { return p.cfg.path("host-before.json") }

// snapshotHost records the host once, before the plane changes anything.
func (p *Plane) snapshotHost() error {
	if _, err := os.Stat(p.hostBeforePath()); err == nil {
		return nil
	}
	h := hostBefore{Sysctls: map[string]string{}, NftTables: NftTables()}
	for _, s := range sysctls {
		if v, err := os.ReadFile(filepath.Join("/proc/sys", s)); err == nil {
			h.Sysctls[s] = strings.TrimSpace(string(v))
		}
	}
	_, err := os.Stat("/run/netns")
	h.RunNetnsExisted = err == nil
	h.RunNetnsMounted = isMountPoint("/run/netns")
	data, _ := json.MarshalIndent(h, "", "  ")
	if err := os.MkdirAll(p.cfg.StateDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(p.hostBeforePath(), data, 0o644)
}

func isMountPoint(path string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// NftTables lists the host's nftables tables ("ip nat", "ip6 filter"...).
func NftTables() []string {
	out, err := exec.Command("nft", "list", "tables").Output()
	if err != nil {
		return nil
	}
	var tables []string
	for _, l := range strings.Split(string(out), "\n") {
		if t, ok := strings.CutPrefix(strings.TrimSpace(l), "table "); ok {
			tables = append(tables, t)
		}
	}
	slices.Sort(tables)
	return tables
}

func writeSysctl(name, value string) error {
	return os.WriteFile(filepath.Join("/proc/sys", name), []byte(value), 0o644)
}

// ensureNetwork sets up the bridge the pods hang on, and routes the service range to it so
// that ClusterIPs are handled on this machine (kube-proxy's rules rewrite them) and never
// leave through the default route.
func (p *Plane) ensureNetwork() (string, error) {
	if err := p.snapshotHost(); err != nil {
		return "", err
	}
	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return "", err
	}
	// Bridged pod-to-pod traffic must cross iptables for Service replies to be un-NATed.
	_ = writeSysctl("net/bridge/bridge-nf-call-iptables", "1")
	br := p.cfg.Bridge
	if len(node.ListLinks(br)) == 0 || !slices.Contains(node.ListLinks(br), br) {
		if err := node.IP("link", "add", br, "type", "bridge"); err != nil {
			return "", err
		}
	}
	ones := strings.Split(p.cfg.PodCIDR, "/")[1]
	out, _ := exec.Command("ip", "-o", "addr", "show", "dev", br).Output()
	if !strings.Contains(string(out), " "+p.cfg.Gateway+"/") {
		if err := node.IP("addr", "add", p.cfg.Gateway+"/"+ones, "dev", br); err != nil {
			return "", err
		}
	}
	if err := node.IP("link", "set", br, "up"); err != nil {
		return "", err
	}
	if err := node.IP("route", "replace", p.cfg.ServiceCIDR, "dev", br, "src", p.cfg.Gateway); err != nil {
		return "", err
	}
	return fmt.Sprintf("bridge %s %s/%s, services %s", br, p.cfg.Gateway, ones, p.cfg.ServiceCIDR), nil
}

// cleanupHost removes what the plane added to the host: pod namespaces and links, the
// bridge, kube-proxy's rules and the nftables tables that did not exist before, and puts
// the sysctls back.
func (p *Plane) cleanupHost() []error {
	var errs []error
	for _, ns := range node.ListNetNS(node.NetNSPrefix) {
		if err := node.IP("netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range node.ListLinks(node.VethPrefix) {
		_ = node.IP("link", "del", l)
	}
	if slices.Contains(node.ListLinks(p.cfg.Bridge), p.cfg.Bridge) {
		// The veths a kubelet node's CNI plugin made go with their pods' namespaces, which the
		// kernel frees in its own time: two of them were seen to outlive down by minutes.
		// Deleting the host's end deletes the pair now.
		for _, l := range node.LinksOn(p.cfg.Bridge) {
			_ = node.IP("link", "del", l)
		}
		if err := node.IP("link", "del", p.cfg.Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	if bin := p.cfg.KubeBin("kube-proxy"); fileExists(bin) {
		// Removes KUBE-* chains and rules, in iptables, ip6tables and nftables.
		_ = exec.Command(bin, "--cleanup", "--v=0").Run()
	}
	var before hostBefore
	data, err := os.ReadFile(p.hostBeforePath())
	if err == nil {
		err = json.Unmarshal(data, &before)
	}
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("%s: %w", p.hostBeforePath(), err))
		}
		return errs
	}
	for _, t := range NftTables() {
		if !slices.Contains(before.NftTables, t) {
			args := append([]string{"delete", "table"}, strings.Fields(t)...)
			if out, err := exec.Command("nft", args...).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("nft %s: %v: %s", strings.Join(args, " "), err, out))
			}
		}
	}
	for name, v := range before.Sysctls {
		cur, err := os.ReadFile(filepath.Join("/proc/sys", name))
		if err == nil && strings.TrimSpace(string(cur)) != v {
			if err := writeSysctl(name, v); err != nil {
				errs = append(errs, fmt.Errorf("restoring %s: %w", name, err))
			}
		}
	}
	if !before.RunNetnsMounted && isMountPoint("/run/netns") {
		if out, err := exec.Command("umount", "/run/netns").CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("umount /run/netns: %v: %s", err, out))
		}
	}
	if !before.RunNetnsExisted {
		_ = os.Remove("/run/netns") // only if empty
	}
	return errs
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
