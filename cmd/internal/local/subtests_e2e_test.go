package local_test

import (
	"testing"
)

// planeSubtest is a subtest of TestLocalPlane written in a file of its own: it runs on the
// plane TestLocalPlane started (tenant-00 and tenant-01 Ready), after the subtests of
// e2e_test.go that use both tenants and before tenant-01 is deleted and the plane taken down.
// A subtest leaves both tenants Ready and removes what it created.
type planeSubtest struct {
	name string
	run  func(t *testing.T, e *e2e)
}

// planeSubtests are registered by init functions, so in the order of their files' names.
var planeSubtests []planeSubtest

func registerPlaneSubtest(name string, run func(t *testing.T, e *e2e)) {
	planeSubtests = append(planeSubtests, planeSubtest{name, run})
}

func (e *e2e) runPlaneSubtests(t *testing.T) {
	for _, s := range planeSubtests {
		t.Run(s.name, func(t *testing.T) { s.run(t, e) })
	}
}
