package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// RunWithPlane is the body of a TestMain whose tests share one plane: it starts the plane, sets
// *p, runs the tests and stops the plane, and returns the exit code.
func RunWithPlane(m *testing.M, p **Plane) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	plane, err := Start(ctx, Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "test plane:", err)
		return 1
	}
	*p = plane
	defer plane.Stop()
	return m.Run()
}
