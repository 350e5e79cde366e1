package nodeagent

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// Run joins the node and then serves it until ctx ends: discovery, TLS bootstrap and
// registration must finish within o.Timeout; after that the Lease, the Ready heartbeat, the
// renewals of the client certificate and the kubelet port run until ctx is cancelled, when Run
// returns nil and leaves the Node in place.
func Run(ctx context.Context, o Options) error {
	if err := o.Complete(); err != nil {
		return err
	}
	logf := lineLogger(o.Out)

	// Bind first: a taken port should fail before the join leaves a Node behind, and with
	// port 0 the Node must report the port actually bound.
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %v", err)
	}
	defer ln.Close()
	_, portStr, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portStr)

	joinCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	info, err := Discovery{
		Server: o.Server, TokenID: o.parsedTokenID, TokenSecret: o.parsedSecret,
		Pins: o.CACertHashes, Interval: o.PollInterval, Timeout: o.Timeout,
	}.Run(joinCtx)
	if err != nil {
		return fmt.Errorf("discovery: %v", err)
	}
	logf("discovery: cluster-info signed by token %s, CA pinned", o.parsedTokenID)
	if info.Server != o.Server {
		logf("discovery: cluster-info names server %s; using %s", info.Server, o.Server)
	}

	bc, err := bootstrapClient(o.Server, o.Token, info.CAPEM)
	if err != nil {
		return fmt.Errorf("bootstrap: %v", err)
	}
	creds, err := TLSBootstrap(joinCtx, bc, o.NodeName, info.CAPEM)
	if err != nil {
		return err
	}
	if err := WriteCredentials(o.CertDir, creds); err != nil {
		return err
	}
	logf("bootstrap: CSR %s approved and signed by %s", creds.CSRName, creds.IssuerCN)

	// The renewals run as long as Run does, whatever ends it.
	rotCtx, stopRotation := context.WithCancel(ctx)
	defer stopRotation()
	nc, err := startClientCertRotation(rotCtx, o.Server, o.CertDir, o.NodeName, info.CAPEM, logf)
	if err != nil {
		return fmt.Errorf("node client: %v", err)
	}
	version, err := nc.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("server version: %v", err)
	}
	node, err := RegisterNode(joinCtx, nc, NodeParams{
		Name: o.NodeName, IP: o.NodeIP, Port: int32(port), KubeletVersion: version.GitVersion,
	})
	if err != nil {
		return err
	}
	logf("registered node %s (%s)", o.NodeName, o.NodeIP)

	cert, err := servingCert(o.NodeName, o.NodeIP, time.Now())
	if err != nil {
		return fmt.Errorf("serving certificate: %v", err)
	}
	tlsCfg, err := kubeletTLSConfig(cert, info.CAPEM)
	if err != nil {
		return err
	}

	// Serving and heartbeats stop together: if the port fails, the Lease must lapse too so the
	// node turns NotReady instead of looking healthy while unreachable.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		keepAlive(runCtx, nc, node, logf)
	}()
	logf("serving kubelet API on %s", ln.Addr())
	err = serveKubelet(runCtx, ln, tlsCfg, logf)
	stop()
	wg.Wait()
	return err
}

// lineLogger writes one line per call; the mutex keeps lines from the server's goroutines and
// the heartbeats whole when they share a writer.
func lineLogger(w io.Writer) func(string, ...any) {
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, format+"\n", args...)
	}
}
