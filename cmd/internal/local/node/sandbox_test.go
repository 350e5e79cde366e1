package node

import (
	"slices"
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
