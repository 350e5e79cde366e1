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
	late bool
}

// planeSubtests are registered by init functions, so in the order of their files' names; the
// late ones run after all the others, in the same order.
var planeSubtests []planeSubtest

func registerPlaneSubtest(name string, run func(t *testing.T, e *e2e)) {
	planeSubtests = append(planeSubtests, planeSubtest{name: name, run: run})
}

// registerLatePlaneSubtest registers a subtest that runs after all the others: one waiting for
// something make test still builds in the background.
func registerLatePlaneSubtest(name string, run func(t *testing.T, e *e2e)) {
	planeSubtests = append(planeSubtests, planeSubtest{name: name, run: run, late: true})
}

func (e *e2e) runPlaneSubtests(t *testing.T) {
	for _, late := range []bool{false, true} {
		for _, s := range planeSubtests {
			if s.late == late {
				t.Run(s.name, func(t *testing.T) { s.run(t, e) })
			}
		}
	}
}
