package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestGetNDistinctOutsideEphemeral(t *testing.T) {
	lo, hi := ephemeral()
	ps, err := GetN(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ps {
		if seen[p] {
			t.Errorf("port %d returned twice in %v", p, ps)
		}
		seen[p] = true
		if p >= lo && p <= hi {
			t.Errorf("port %d is in the ephemeral range %d-%d", p, lo, hi)
		}
		if p >= 20000 && p <= 32767 {
			t.Errorf("port %d is in the wake or NodePort range", p)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Errorf("port %d is not free after GetN returned: %v", p, err)
			continue
		}
		l.Close()
	}
}

func TestUsableCutsEphemeralRange(t *testing.T) {
	got := usable(10000, 62000)
	if len(got) != 65535-62000 || got[0] != 62001 {
		t.Errorf("usable(10000, 62000) = %d ports from %d; want %d from 62001", len(got), got[0], 65535-62000)
	}
	if got := usable(1024, 65535); len(got) != 0 {
		t.Errorf("usable over the whole range left %d ports", len(got))
	}
}
