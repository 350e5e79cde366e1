// Package migration moves a tenant's keys between two datastore slices through the drivers'
// Export and Import streams: chunk by chunk (memory bounded by the chunk size, whatever the
// tenant's size), translating keys between the drivers' layouts, and summing what went through
// so both sides can be compared before anything switches.
package migration

import (
	"bytes"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// Layout is how a driver's exported keys relate to the keys kube-apiserver writes.
type Layout int

const (
	// LayoutEtcd: kube-apiserver talks to the datastore with --etcd-prefix=<connection prefix>;
	// exported keys are relative to that prefix ("pods/default/a"), which is what the
	// apiserver's own storage paths are.
	LayoutEtcd Layout = iota
	// LayoutKine: kube-apiserver talks to a kine sidecar with the default --etcd-prefix
	// (/registry); exported keys are relative to "/" and so carry "registry/".
	LayoutKine
)

// kinePrefix is what kube-apiserver's default --etcd-prefix adds to every key under kine.
var kinePrefix = []byte("registry/")

func (l Layout) String() string {
	if l == LayoutKine {
		return "kine"
	}
	return "etcd"
}

// LayoutOf is the layout of a slice from the connection its driver returned.
func LayoutOf(conn datastore.Connection) Layout {
	if conn.Kine != nil {
		return LayoutKine
	}
	return LayoutEtcd
}

// Translate maps an exported key of one layout to the other; ok is false for a key that is
// not the apiserver's (kine's own bookkeeping outside /registry), which is not carried over.
func Translate(key []byte, from, to Layout) (out []byte, ok bool) {
	switch {
	case from == to:
		return key, true
	case from == LayoutKine: // to etcd
		rest, found := bytes.CutPrefix(key, kinePrefix)
		return rest, found && len(rest) > 0
	default: // etcd to kine
		return append(bytes.Clone(kinePrefix), key...), true
	}
}
