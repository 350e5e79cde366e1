package sdk

import (
	"errors"
	"fmt"
)

// ErrUnimplemented is returned by an optional operation the plugin does not support. A plugin
// returns it (or an error wrapping it) and the SDK answers the gRPC code UNIMPLEMENTED; on the host
// side the client turns UNIMPLEMENTED back into an error for which errors.Is(err,
// ErrUnimplemented) holds, so callers can stop retrying.
var ErrUnimplemented = errors.New("unimplemented")

// FieldError is an invalid input, naming the offending field by its path in proto JSON names,
// e.g. "endpoints[0]" or "tenant.schema". It crosses the wire as INVALID_ARGUMENT.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// InvalidField returns a *FieldError for field with a formatted message.
func InvalidField(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// OwnedError refuses a datastore slice (a schema or a user) that is recorded for another owner.
// It crosses the wire as ALREADY_EXISTS; the host gets an *OwnedError back (with Field empty and
// the plugin's message in Message, which names the owner).
type OwnedError struct {
	// Field is "tenant.schema" or "tenant.username".
	Field string
	// Message says what is taken and by whom, e.g. `etcd prefix "/t_a/" is owned by ns/a (uid 1234)`.
	Message string
}

func (e *OwnedError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Owned returns an *OwnedError for field with a formatted message.
func Owned(field, format string, args ...any) error {
	return &OwnedError{Field: field, Message: fmt.Sprintf(format, args...)}
}
