package main

import (
	"io"
	"net"
	"sync"
)

// blackhole is a TCP relay in front of the DataStore's etcd that can be cut. Cut, it behaves as
// a firewall DROP rule does for the client: connections stay open, nothing it sends is answered,
// new connections get no reply to their first bytes (the TLS handshake stalls). Data read while
// cut is held and delivered once restored, as TCP retransmission would deliver it after a DROP
// rule is lifted. The machine has neither iptables nor nft, and the DataStore's etcd listens on
// loopback, so a relay is how this suite makes it unreachable.
type blackhole struct {
	ln       net.Listener
	upstream string

	mu   sync.Mutex
	cut  bool
	open chan struct{} // closed while not cut
}

func newBlackhole(upstream string) (*blackhole, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &blackhole{ln: ln, upstream: upstream, open: make(chan struct{})}
	close(b.open)
	go b.serve()
	return b, nil
}

// Addr is the relay's "127.0.0.1:port", the endpoint the DataStore names.
func (b *blackhole) Addr() string { return b.ln.Addr().String() }

// Cut makes the upstream unreachable; Restore lifts it.
func (b *blackhole) Cut() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.cut {
		b.cut = true
		b.open = make(chan struct{})
	}
}

func (b *blackhole) Restore() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		b.cut = false
		close(b.open)
	}
}

// wait blocks while the relay is cut.
func (b *blackhole) wait() {
	b.mu.Lock()
	ch := b.open
	b.mu.Unlock()
	<-ch
}

func (b *blackhole) Close() error { return b.ln.Close() }

func (b *blackhole) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		go b.relay(c)
	}
}

func (b *blackhole) relay(c net.Conn) {
	defer c.Close()
	b.wait() // a connection opened while cut reaches nothing until restored
	up, err := net.Dial("tcp", b.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { b.copy(up, c); done <- struct{}{} }()
	go func() { b.copy(c, up); done <- struct{}{} }()
	<-done
}

// copy forwards src to dst, holding each chunk while the relay is cut.
func (b *blackhole) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			b.wait()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				_ = dst.Close()
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}
