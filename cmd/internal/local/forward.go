package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Forward relays TCP connections: for each "listen=target" pair it accepts on listen and
// copies bytes both ways to a new connection to target, until ctx ends. The local plane runs it
// (`kamaji local forward`) to make the machine's MariaDB and PostgreSQL, which listen on
// loopback only, reachable from the pods' network at the bridge address. The servers see the
// connections coming from 127.0.0.1.
func Forward(ctx context.Context, pairs []string) error {
	if len(pairs) == 0 {
		return errors.New("no listen=target pair")
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, len(pairs))
	for _, pair := range pairs {
		listen, target, ok := strings.Cut(pair, "=")
		if !ok || listen == "" || target == "" {
			return fmt.Errorf("%q: want listen=target, as 10.244.0.1:3306=127.0.0.1:3306", pair)
		}
		var lc net.ListenConfig
		l, err := lc.Listen(ctx, "tcp", listen)
		if err != nil {
			return err
		}
		ls = append(ls, l)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- serveForward(ctx, l, target)
		}()
	}
	select {
	case <-ctx.Done():
	case err := <-errs:
		if ctx.Err() == nil {
			return err
		}
	}
	for _, l := range ls {
		l.Close()
	}
	wg.Wait()
	return nil
}

func serveForward(ctx context.Context, l net.Listener, target string) error {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept on %s: %w", l.Addr(), err)
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			relay(ctx, c, target)
		}()
	}
}

// relay copies between the accepted connection and a new one to target, half-closing each
// side when the other finishes writing.
func relay(ctx context.Context, in net.Conn, target string) {
	defer in.Close()
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	out, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return
	}
	defer out.Close()
	stop := context.AfterFunc(ctx, func() { in.Close(); out.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}
