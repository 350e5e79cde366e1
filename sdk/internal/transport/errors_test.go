package transport

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk"
)

func TestErrorRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in   error
		code codes.Code
		is   error
	}{
		{fmt.Errorf("usage: %w", sdk.ErrUnimplemented), codes.Unimplemented, sdk.ErrUnimplemented},
		{sdk.InvalidField("endpoints[0]", "bad port %q", "x"), codes.InvalidArgument, nil},
		{status.Error(codes.AlreadyExists, "taken"), codes.AlreadyExists, nil},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), codes.DeadlineExceeded, nil},
		{errors.New("boom"), codes.Unknown, nil},
	} {
		st := ToStatus(tc.in)
		if status.Code(st) != tc.code {
			t.Errorf("ToStatus(%v) = %v, want %v", tc.in, status.Code(st), tc.code)
		}
		back := FromStatus("Call", st)
		if status.Code(back) != tc.code && tc.code != codes.InvalidArgument && tc.code != codes.Unimplemented && tc.code != codes.AlreadyExists {
			t.Errorf("FromStatus lost the code of %v: %v", tc.in, back)
		}
		if tc.is != nil && !errors.Is(back, tc.is) {
			t.Errorf("FromStatus(%v) = %v, want errors.Is %v", st, back, tc.is)
		}
	}
	var fe *sdk.FieldError
	back := FromStatus("ValidateConfig", ToStatus(sdk.InvalidField("endpoints[0]", "bad port")))
	if !errors.As(back, &fe) || fe.Field != "endpoints[0]" || fe.Message != "bad port" {
		t.Errorf("FieldError did not survive: %#v", back)
	}
	if back.Error() != "ValidateConfig: endpoints[0]: bad port" {
		t.Errorf("message %q", back)
	}
	// ALREADY_EXISTS, from sdk.Owned or a plugin's own status, comes back as an *sdk.OwnedError.
	for _, in := range []error{sdk.Owned("tenant.schema", "owned by ns/a (uid 1)"), status.Error(codes.AlreadyExists, "tenant.schema: owned by ns/a (uid 1)")} {
		st := ToStatus(in)
		if status.Code(st) != codes.AlreadyExists {
			t.Errorf("ToStatus(%v) = %v, want AlreadyExists", in, status.Code(st))
		}
		var oe *sdk.OwnedError
		back := FromStatus("EnsureTenant", st)
		if !errors.As(back, &oe) || back.Error() != "EnsureTenant: tenant.schema: owned by ns/a (uid 1)" {
			t.Errorf("OwnedError did not survive: %#v (%v)", back, back)
		}
	}
}

func TestWithTimeoutKeepsCallerDeadline(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), 1<<40)
	defer cancel()
	want, _ := parent.Deadline()
	ctx, c := WithTimeout(parent, 1)
	defer c()
	if got, _ := ctx.Deadline(); !got.Equal(want) {
		t.Errorf("deadline %v, want the caller's %v", got, want)
	}
	ctx, c = WithTimeout(context.Background(), 1<<40)
	defer c()
	if _, ok := ctx.Deadline(); !ok {
		t.Error("no default deadline")
	}
}
