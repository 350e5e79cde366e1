package node

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestLinkNames(t *testing.T) {
	out := []byte(`1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
7: vetha9bccead@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master kamaji0 state UP mode DEFAULT group default \    link/ether 3e:1c:8f:4a:2b:01 brd ff:ff:ff:ff:ff:ff link-netnsid 1
9: kvabcdef0123@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master kamaji0 state UP mode DEFAULT group default \    link/ether 3e:1c:8f:4a:2b:02 brd ff:ff:ff:ff:ff:ff link-netnsid 2
`)
	if got, want := linkNames(out, ""), []string{"lo", "vetha9bccead", "kvabcdef0123"}; !slices.Equal(got, want) {
		t.Errorf("linkNames(all) = %v, want %v", got, want)
	}
	if got, want := linkNames(out, "veth"), []string{"vetha9bccead"}; !slices.Equal(got, want) {
		t.Errorf("linkNames(veth) = %v, want %v", got, want)
	}
}

// TestIPBatch runs real ip(8) batches: commands apply in order, in the namespace asked for, and
// a failure names the command that failed.
func TestIPBatch(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("network namespaces need root on Linux")
	}
	ns := fmt.Sprintf("ipbatch-test-%d", os.Getpid())
	if err := ipBatch("", false, [][]string{{"netns", "add", ns}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ipBatch("", true, [][]string{{"netns", "del", ns}}) })
	if err := ipBatch(ns, false, [][]string{{"link", "set", "lo", "up"}, {"addr", "add", "10.99.0.1/32", "dev", "lo"}}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ListNetNS("ipbatch-test-"), ns) {
		t.Errorf("namespace %s not listed: %v", ns, ListNetNS("ipbatch-test-"))
	}
	err := ipBatch(ns, false, [][]string{{"link", "set", "lo", "up"}, {"addr", "add", "10.99.0.1/32", "dev", "lo"}, {"link", "set", "lo", "down"}})
	if err == nil || !strings.Contains(err.Error(), "ip -n "+ns+" addr add 10.99.0.1/32 dev lo:") || !strings.Contains(err.Error(), "already assigned") {
		t.Errorf("adding the address again: %v, want an error naming that command and the cause", err)
	}
	// -force goes on past the failed line.
	if err := ipBatch("", true, [][]string{{"link", "del", "nothing-here0"}, {"netns", "del", ns}}); err == nil {
		t.Error("a forced batch with a failed line: no error")
	}
	if slices.Contains(ListNetNS("ipbatch-test-"), ns) {
		t.Errorf("namespace %s still there after the forced batch", ns)
	}
}
