package local

import (
	"bufio"
	"context"
	"k8s.io/apimachinery/pkg/util/wait"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openhcp/kamaji/cmd/internal/local/node"

	"github.com/openhcp/kamaji/sdk/testkit/freeport"
)

func TestParseDataStores(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want []string
		err  string
	}{
		{in: []string{"etcd"}, want: []string{"etcd"}},
		{in: []string{"etcd,mysql", "NATS"}, want: []string{"etcd", "mysql", "nats"}},
		{in: []string{"all"}, want: []string{"etcd", "etcd-2", "mysql", "nats", "postgresql"}},
		{in: []string{"mysql,mysql, postgresql"}, want: []string{"mysql", "postgresql"}},
		{in: nil, want: nil},
		{in: []string{"postgres"}, err: `unknown DataStore "postgres"`},
	} {
		got, err := ParseDataStores(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%v: %v %v, want %v", c.in, got, err, c.want)
		}
	}
}

// The default image map runs the kine hack/kube-bins.sh builds for the image the plugins return.
func TestKineImageMapped(t *testing.T) {
	cache := t.TempDir()
	bin := filepath.Join(cache, "kine", KineVersion, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "kine"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := node.LoadImages(filepath.Join(t.TempDir(), "missing.yaml"), cache)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Resolve(KineImage)
	if err != nil {
		t.Fatal(err)
	}
	if res.Dir != bin || res.Entrypoint != "kine" {
		t.Fatalf("%s resolves to %+v, want %s/kine", KineImage, res, bin)
	}
	c := Config{Cache: cache}
	if c.KineBin() != filepath.Join(bin, "kine") {
		t.Errorf("KineBin %s", c.KineBin())
	}
}

func TestForward(t *testing.T) {
	// A line echo server behind the relay.
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					_, _ = c.Write([]byte("echo " + line))
				}
			}()
		}
	}()
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Forward(ctx, []string{listen + "=" + target.Addr().String()}) }()

	var c net.Conn
	if perr := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		c, err = net.Dial("tcp", listen)
		return err == nil, nil
	}); perr != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for _, msg := range []string{"one\n", "two\n"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := r.ReadString('\n')
		if err != nil || got != "echo "+msg {
			t.Fatalf("through the relay: %q %v", got, err)
		}
	}
	// Stopping the relay ends its connections and returns.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Forward: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Forward did not return")
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Error("the relayed connection is still open")
	}
	if err := Forward(context.Background(), []string{"nonsense"}); err == nil {
		t.Error("a pair without = accepted")
	}
}
