package node

import (
	"bytes"
	"context"
	"os/exec"
	"time"
)

// A pod being deleted may still be a target of Services: kube-proxy drops it only once the
// EndpointSlice controller has marked it terminating and kube-proxy has rewritten its rules,
// which on a busy machine takes up to a second or more. A process stopped before that refuses
// the new connections still sent to it: a blue/green rollout of a tenant apiserver (the new pod
// Ready, the old one deleted at once) loses requests. So the node first reports the pod not
// ready (a sole endpoint is then dropped too, rather than kept as "serving"), then waits until
// no DNAT rule of kube-proxy leads to the pod's address, and only then sends SIGTERM. Existing
// connections are not affected by the rules: the processes close them gracefully on SIGTERM.

// unrouteMax caps the wait (it also never exceeds half the pod's grace period): a kube-proxy
// that is not running leaves stale rules behind.
const unrouteMax = 10 * time.Second

// routedTo reports whether the host's NAT rules still send connections to ip. No iptables
// (or no kube-proxy rules at all) means nothing routes there.
func routedTo(ctx context.Context, ip string) bool {
	out, err := exec.CommandContext(ctx, "iptables-save", "-t", "nat").Output()
	if err != nil {
		return false
	}
	return bytes.Contains(out, []byte("--to-destination "+ip+":"))
}

// waitUnrouted polls the NAT rules every 50 ms until none routes to ip, or max elapsed. It
// returns how long it waited and whether the rules still route there.
func waitUnrouted(ip string, max time.Duration) (time.Duration, bool) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), max)
	defer cancel()
	for {
		if !routedTo(ctx, ip) {
			return time.Since(start), ctx.Err() != nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), true
		case <-time.After(50 * time.Millisecond):
		}
	}
}
