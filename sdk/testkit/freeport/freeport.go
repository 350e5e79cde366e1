// Package freeport picks loopback TCP ports for test servers that take a port number
// (etcd, kube-apiserver, kine, databases) rather than a listener.
//
// A port the kernel hands out for 127.0.0.1:0 comes from its ephemeral range, which it also
// uses for the source port of every outgoing connection: between the moment the test closes
// its probe listener and the moment the server binds, any process on the machine can take it,
// and with a dozen test packages dialling at once that happens ("bind: address already in
// use"). So the port is chosen outside the ephemeral range, and outside the ranges this
// project binds on its own (the manager's wake ports 20000-29999, NodePorts 30000-32767, the
// local plane's fixed ports below 15000), and held open while checked.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ranges are the candidate ports, [lo, hi] inclusive, before the ephemeral range is cut out.
var ranges = [][2]int{{15000, 19999}, {61000, 65535}}

var (
	once       sync.Once
	candidates []int
)

// Get returns one port that was free on 127.0.0.1 a moment ago.
func Get() (int, error) {
	ps, err := GetN(1)
	if err != nil {
		return 0, err
	}
	return ps[0], nil
}

// GetN returns n distinct ports that were free on 127.0.0.1 a moment ago.
func GetN(n int) ([]int, error) {
	once.Do(func() { candidates = usable(ephemeral()) })
	if len(candidates) == 0 {
		return nil, errors.New("freeport: no port outside the kernel's ephemeral range (net.ipv4.ip_local_port_range)")
	}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries >= 200*n {
			return nil, fmt.Errorf("freeport: no free port among %d tries", tries)
		}
		p := candidates[rand.IntN(len(candidates))]
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue // taken; held ones fail too, so the ports are distinct
		}
		held = append(held, l)
		ports = append(ports, p)
	}
	return ports, nil
}

// ephemeral reads the kernel's ephemeral port range; Linux's default when unreadable.
func ephemeral() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l > h {
		return lo, hi
	}
	return l, h
}

// usable lists the candidate ports outside [eLo, eHi].
func usable(eLo, eHi int) []int {
	var out []int
	for _, r := range ranges {
		for p := r[0]; p <= r[1]; p++ {
			if p < eLo || p > eHi {
				out = append(out, p)
			}
		}
	}
	return out
}
