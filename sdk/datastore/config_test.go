package datastore

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	kamajipb "github.com/openhcp/kamaji/sdk/internal/gen/kamaji"
	pb "github.com/openhcp/kamaji/sdk/internal/gen/kamaji/datastore/v1"
)

// formatted renders c every way a careless log line could.
func formatted(c Config) string {
	var b bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		fmt.Fprintf(&b, verb+"\n", c)
		fmt.Fprintf(&b, verb+"\n", &c)
	}
	fmt.Fprintln(&b, c, []Config{c}, map[string]Config{"c": c}, struct{ C Config }{c})
	slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "cfg", c)
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "cfg", c)
	fmt.Fprintf(&b, "%v\n", c.Redacted())
	return b.String()
}

func TestSecretsNeverFormatted(t *testing.T) {
	c := Config{
		Name: "ds", Driver: "etcd", Endpoints: []string{"etcd:2379"},
		CACert: []byte("CA-CERT"), CAKey: []byte("CA-KEY-SECRET"),
		ClientCert: []byte("CLIENT-CERT"), ClientKey: []byte("CLIENT-KEY-SECRET"),
		Username: "root", Password: "hunter2-SECRET", Parameters: map[string]string{"p": "v"},
	}
	out := formatted(c)
	if strings.Contains(out, "SECRET") {
		t.Errorf("a secret leaked:\n%s", out)
	}
	for _, want := range []string{"ds", "etcd:2379", "root", "[REDACTED]"} {
		if !strings.Contains(out, want) {
			t.Errorf("%q missing from:\n%s", want, out)
		}
	}
	r := c.Redacted()
	if r.Password != "[REDACTED]" || string(r.CAKey) != "[REDACTED]" || string(r.ClientKey) != "[REDACTED]" || c.Password != "hunter2-SECRET" {
		t.Errorf("Redacted = %+v (and must not change the original)", r)
	}
	if empty := (Config{}).Redacted(); empty.Password != "" {
		t.Errorf("an empty secret reads %q, want empty", empty.Password)
	}
}

// TestSecretAnnotationsRedacted keeps the proto and the Go redaction in sync: every field marked
// (kamaji.secret) is set to a marker on the wire type, converted, and must not be printed.
func TestSecretAnnotationsRedacted(t *testing.T) {
	msg := &pb.DataStoreConfig{}
	fields := msg.ProtoReflect().Descriptor().Fields()
	var secrets []string
	for i := range fields.Len() {
		f := fields.Get(i)
		if !proto.GetExtension(f.Options(), kamajipb.E_Secret).(bool) {
			continue
		}
		secrets = append(secrets, string(f.Name()))
		marker := "MARKER-" + string(f.Name())
		switch f.Kind() {
		case protoreflect.StringKind:
			msg.ProtoReflect().Set(f, protoreflect.ValueOfString(marker))
		case protoreflect.BytesKind:
			msg.ProtoReflect().Set(f, protoreflect.ValueOfBytes([]byte(marker)))
		default:
			t.Fatalf("secret field %s has kind %s", f.Name(), f.Kind())
		}
	}
	if len(secrets) != 3 {
		t.Errorf("secret fields %v, want ca_key, client_key and password", secrets)
	}
	out := formatted(configFromPB(msg))
	if strings.Contains(out, "MARKER") {
		t.Errorf("a field marked secret leaked:\n%s", out)
	}
}

func TestConnectionRedacted(t *testing.T) {
	c := Connection{Kine: &KineSidecar{
		Env:   []EnvVar{{Name: "DSN", Value: "mysql://u:SECRET@h/db", Secret: true}, {Name: "LOG", Value: "info"}},
		Files: []File{{Path: "/k", Content: []byte("SECRET"), Secret: true}},
	}}
	r := c.Redacted()
	if strings.Contains(fmt.Sprintf("%+v %+v", *r.Kine, r.Kine.Files), "SECRET") || r.Kine.Env[1].Value != "info" {
		t.Errorf("Redacted = %+v", *r.Kine)
	}
	if c.Kine.Env[0].Value != "mysql://u:SECRET@h/db" {
		t.Error("Redacted changed the original")
	}
}

func TestCapabilitiesMatchTheProto(t *testing.T) {
	for c, name := range map[Capability]string{
		CapabilityExportImport: "EXPORT_IMPORT", CapabilityUsage: "USAGE", CapabilityMultiTenant: "MULTI_TENANT",
		CapabilityNeedsCAKey: "NEEDS_CA_KEY", CapabilityDirectEtcd: "DIRECT_ETCD", CapabilityKineSidecar: "KINE_SIDECAR",
		CapabilityValidateTenant: "VALIDATE_TENANT",
	} {
		if pb.Capability_value["CAPABILITY_"+name] != int32(c) || c.String() != name {
			t.Errorf("%s = %d (%s), proto says %d", name, c, c, pb.Capability_value["CAPABILITY_"+name])
		}
	}
	if got := Capability(99).String(); got != "CAPABILITY(99)" {
		t.Errorf("unknown capability prints %q", got)
	}
	if len(pb.Capability_name) != 8 {
		t.Errorf("the proto has %d capabilities; add the new ones here and to types.go", len(pb.Capability_name))
	}
}
