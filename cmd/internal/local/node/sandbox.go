package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Names of what the node creates on the host, so that a restarted node and `kamaji local down`
// find (and only find) their own.
const (
	NetNSPrefix = "kamaji-"
	VethPrefix  = "kveth"
)

// ipam hands out pod addresses from the bridge's subnet (the gateway excluded).
type ipam struct {
	mu     sync.Mutex
	subnet *net.IPNet
	gw     net.IP
	used   map[string]bool
	next   uint32
}

func newIPAM(subnet *net.IPNet, gw net.IP) *ipam {
	return &ipam{subnet: subnet, gw: gw.To4(), used: map[string]bool{}}
}

func (a *ipam) allocate() (net.IP, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	base := binary.BigEndian.Uint32(a.subnet.IP.To4())
	ones, bits := a.subnet.Mask.Size()
	size := uint32(1) << uint(bits-ones)
	for i := uint32(0); i < size; i++ {
		off := (a.next+i)%(size-2) + 1 // skip network and broadcast
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, base+off)
		if ip.Equal(a.gw) || a.used[ip.String()] {
			continue
		}
		a.used[ip.String()] = true
		a.next = off
		return ip, nil
	}
	return nil, fmt.Errorf("no free address in %s", a.subnet)
}

func (a *ipam) release(ip net.IP) {
	if ip == nil {
		return
	}
	a.mu.Lock()
	delete(a.used, ip.String())
	a.mu.Unlock()
}

// sandbox is a pod's network: a namespace with eth0 (a veth whose peer is on the bridge) and lo.
type sandbox struct {
	NetNS string
	Veth  string
	IP    net.IP
}

func (s *sandbox) nsPath() string { return "/run/netns/" + s.NetNS }

// SandboxNames are the network namespace and host veth of the pod with this uid.
func SandboxNames(uid string) (netns, veth string) {
	sum := sha256.Sum256([]byte(uid))
	h := hex.EncodeToString(sum[:])
	return NetNSPrefix + h[:12], VethPrefix + h[:10]
}

func (n *Node) setupSandbox(uid string) (*sandbox, error) {
	netns, veth := SandboxNames(uid)
	// Leftovers of an earlier attempt for the same pod go first.
	teardownSandbox(netns, veth)
	ip, err := n.ipam.allocate()
	if err != nil {
		return nil, err
	}
	s := &sandbox{NetNS: netns, Veth: veth, IP: ip}
	ones, _ := n.cfg.PodCIDR.Mask.Size()
	host := [][]string{
		{"netns", "add", netns},
		{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns},
		{"link", "set", veth, "master", n.cfg.Bridge},
		// A pod reaching itself through a Service comes back through its own port.
		{"link", "set", "dev", veth, "type", "bridge_slave", "hairpin", "on"},
		{"link", "set", veth, "up"},
	}
	inPod := [][]string{
		{"addr", "add", fmt.Sprintf("%s/%d", ip, ones), "dev", "eth0"},
		{"link", "set", "lo", "up"},
		{"link", "set", "eth0", "up"},
		{"route", "add", "default", "via", n.cfg.Gateway.String()},
	}
	err = ipBatch("", false, host)
	if err == nil {
		err = ipBatch(netns, false, inPod)
	}
	if err != nil {
		teardownSandbox(netns, veth)
		n.ipam.release(ip)
		return nil, err
	}
	return s, nil
}

func (n *Node) teardown(s *sandbox) {
	if s == nil {
		return
	}
	teardownSandbox(s.NetNS, s.Veth)
	n.ipam.release(s.IP)
}

func teardownSandbox(netns, veth string) {
	// Deleting the veth also removes eth0 in the namespace; the processes in the namespace are
	// gone by now. Either may be gone already: -force goes on past a failed line.
	_ = ipBatch("", true, [][]string{{"link", "del", veth}, {"netns", "del", netns}})
}

// ipBatch runs several ip(8) commands in one process (ip -batch), in network namespace netns
// when set: a pod's sandbox takes 3 processes instead of 11, each a few milliseconds of a pod's
// start. Without force it stops at the first failure, which the error names.
func ipBatch(netns string, force bool, cmds [][]string) error {
	var args []string
	if netns != "" {
		args = append(args, "-n", netns)
	}
	if force {
		args = append(args, "-force")
	}
	var in bytes.Buffer
	for _, c := range cmds {
		in.WriteString(strings.Join(c, " ") + "\n")
	}
	var out bytes.Buffer
	cmd := exec.Command("ip", append(args, "-batch", "-")...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = &in, &out, &out
	if err := cmd.Run(); err != nil {
		failed := strings.Join(args, " ") + " -batch"
		// ip names the failed line as "Command failed -:<line>".
		if m := batchFailed.FindStringSubmatch(out.String()); m != nil {
			if i, _ := strconv.Atoi(m[1]); i >= 1 && i <= len(cmds) {
				failed = strings.TrimSpace(strings.Join(args, " ") + " " + strings.Join(cmds[i-1], " "))
			}
		}
		return fmt.Errorf("ip %s: %v: %s", failed, err, strings.TrimSpace(batchFailed.ReplaceAllString(out.String(), "")))
	}
	return nil
}

var batchFailed = regexp.MustCompile(`Command failed -:(\d+)\s*`)

// IP runs the ip(8) command.
func IP(args ...string) error {
	var out bytes.Buffer
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// ListNetNS returns the network namespaces named with prefix.
func ListNetNS(prefix string) []string {
	out, _ := exec.Command("ip", "netns", "list").Output()
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	return names
}

// ListLinks returns the host's links named with prefix.
func ListLinks(prefix string) []string {
	out, _ := exec.Command("ip", "-o", "link", "show").Output()
	return linkNames(out, prefix)
}

// LinksOn lists the links enslaved to the bridge br: the host's ends of the pods' veths.
func LinksOn(br string) []string {
	out, _ := exec.Command("ip", "-o", "link", "show", "master", br).Output()
	return linkNames(out, "")
}

// linkNames reads the names in `ip -o link show`'s output ("5: veth1@if2: <...> ...").
func linkNames(out []byte, prefix string) []string {
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		name, _, _ = strings.Cut(name, "@")
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	return names
}
