package testenv

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A server that lost its port to another process between the pick and its bind is started
// again on other ports; any other failure is returned as it is.
func TestStartOnFreePortsRetriesATakenPort(t *testing.T) {
	dir := t.TempDir()
	var tries [][]int
	ready := func(p *process) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return poll(ctx, p, "ready", func() bool { return strings.Contains(p.tail(), "serving") })
	}
	p, err := startOnFreePorts(2, func(ports []int) (*process, error) {
		tries = append(tries, ports)
		script := "echo serving; sleep 60"
		if len(tries) == 1 {
			script = "echo 'listen tcp 127.0.0.1:1: bind: address already in use'; exit 1"
		}
		return startProcess("server", filepath.Join(dir, "server.log"), "/bin/sh", "-c", script)
	}, ready)
	if err != nil {
		t.Fatalf("after a taken port: %v", err)
	}
	p.stop()
	if len(tries) != 2 || len(tries[1]) != 2 {
		t.Fatalf("tries = %v; want a second try on two new ports", tries)
	}

	tries = nil
	_, err = startOnFreePorts(1, func(ports []int) (*process, error) {
		tries = append(tries, ports)
		return startProcess("server", filepath.Join(dir, "server.log"), "/bin/sh", "-c", "echo 'bad flag'; exit 1")
	}, ready)
	if err == nil || !strings.Contains(err.Error(), "bad flag") || len(tries) != 1 {
		t.Fatalf("a server failing for another cause: err %v after %d tries; want its log after 1", err, len(tries))
	}
}
