package addon

import (
	"testing"

	pb "github.com/openhcp/kamaji/sdk/internal/gen/kamaji/addon/v1"
)

func TestCapabilitiesMatchTheProto(t *testing.T) {
	if int32(CapabilityControlPlaneAdditions) != int32(pb.Capability_CAPABILITY_CONTROL_PLANE_ADDITIONS) || len(pb.Capability_name) != 2 {
		t.Error("addon capabilities out of sync with the proto")
	}
}
