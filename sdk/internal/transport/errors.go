package transport

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk"
)

// ToStatus is the server side: it maps a plugin's Go error to the gRPC status the contract
// promises. Errors that already carry a status pass through, so a plugin may answer any code.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	var fe *sdk.FieldError
	var oe *sdk.OwnedError
	switch {
	case errors.As(err, &oe):
		return status.Error(codes.AlreadyExists, oe.Error())
	case errors.As(err, &fe):
		st := status.New(codes.InvalidArgument, fe.Error())
		if d, derr := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: fe.Field, Description: fe.Message},
		}}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, sdk.ErrUnimplemented):
		return status.Error(codes.Unimplemented, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

// FromStatus is the client side: UNIMPLEMENTED becomes sdk.ErrUnimplemented,
// INVALID_ARGUMENT a *sdk.FieldError and ALREADY_EXISTS an *sdk.OwnedError; any other status is wrapped, so status.FromError and
// status.Code still see it.
func FromStatus(method string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", method, err)
	}
	switch st.Code() {
	case codes.AlreadyExists:
		return fmt.Errorf("%s: %w", method, &sdk.OwnedError{Message: st.Message()})
	case codes.Unimplemented:
		return fmt.Errorf("%s: %w: %s", method, sdk.ErrUnimplemented, st.Message())
	case codes.InvalidArgument:
		fe := &sdk.FieldError{Message: st.Message()}
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
				fe.Field = br.GetFieldViolations()[0].GetField()
				fe.Message = br.GetFieldViolations()[0].GetDescription()
			}
		}
		return fmt.Errorf("%s: %w", method, fe)
	}
	return fmt.Errorf("%s: %w", method, err)
}
