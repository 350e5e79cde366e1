package main

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
)

// Bytes sent through a cut relay are held, not lost and not refused: they arrive once it is
// restored, as after a DROP rule is lifted.
func TestBlackholeHoldsUntilRestored(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }() // echo
		}
	}()
	b, err := newBlackhole(up.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// Connected before the cut: an established connection.
	c1, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	roundTrip(t, c1, "before")

	b.Cut()
	// Opened while cut: the relay accepts it (the kernel would too) but reaches nothing.
	c2, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for _, c := range []net.Conn{c1, c2} {
		if _, err := c.Write([]byte("during")); err != nil {
			t.Fatal(err)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("upstream accepted %d connections while cut, want only the one made before", n)
	}
	b.Restore()
	for _, c := range []net.Conn{c1, c2} {
		got := make([]byte, len("during"))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, []byte("during")) {
			t.Fatalf("after restore: read %q, %v; want the bytes sent while cut", got, err)
		}
	}
	roundTrip(t, c2, "after")
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("read %q, %v; want %q", got, err, msg)
	}
}
