package kine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/openhcp/kamaji/sdk/testkit/child"
	"github.com/openhcp/kamaji/sdk/testkit/freeport"
)

// kineProcess is a real kine started from a sidecar spec, listening on a free loopback port.
type kineProcess struct {
	cmd  *exec.Cmd
	cli  *clientv3.Client
	out  *syncBuffer
	done <-chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b.Bytes()
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func startKine(ctx context.Context, bin string, sc *Sidecar) (*kineProcess, error) {
	port, err := freeport.Get()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := make([]string, 0, len(sc.Args)+1)
	for _, a := range sc.Args {
		if strings.HasPrefix(a, "--listen-address=") {
			continue
		}
		args = append(args, a)
	}
	args = append(args, "--listen-address="+addr)
	p := &kineProcess{out: &syncBuffer{}}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "KINE_SCHEMA_MIGRATION=0")
	for k, v := range sc.Env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if p.done, err = child.Start(p.cmd); err != nil {
		return nil, fmt.Errorf("start kine: %w", err)
	}

	p.cli, err = clientv3.New(clientv3.Config{Endpoints: []string{"http://" + addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		p.Close()
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := p.cli.Get(cctx, "/kamaji-conformance-ready")
		cancel()
		if err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("kine %s exited: %s", strconv.Quote(strings.Join(args, " ")), p.out.tail())
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.Close()
			return nil, fmt.Errorf("kine not ready after 60s (%v): %s", err, p.out.tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// processTimeout bounds a request to kine: kine retries a backend that went away (a deleted
// database or bucket) until its client gives up.
const processTimeout = 10 * time.Second

func (p *kineProcess) Put(ctx context.Context, key string, value []byte) error {
	ctx, cancel := context.WithTimeout(ctx, processTimeout)
	defer cancel()
	_, err := p.cli.Put(ctx, key, string(value))
	return err
}

func (p *kineProcess) Get(ctx context.Context, key string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, processTimeout)
	defer cancel()
	r, err := p.cli.Get(ctx, key)
	if err != nil {
		return nil, false, err
	}
	if len(r.Kvs) == 0 {
		return nil, false, nil
	}
	return r.Kvs[0].Value, true, nil
}

func (p *kineProcess) Close() error {
	var err error
	if p.cli != nil {
		err = p.cli.Close()
	}
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	return errors.Join(err)
}
