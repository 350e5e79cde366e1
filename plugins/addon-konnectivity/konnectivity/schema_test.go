package konnectivity

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/server/egressselector"
)

// The egress selector configuration is read and validated by kube-apiserver's own code.
func TestEgressSelectorConfigurationIsValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "egress.yaml")
	if err := os.WriteFile(path, EgressSelectorConfiguration(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := egressselector.ReadEgressSelectorConfiguration(path)
	if err != nil {
		t.Fatal(err)
	}
	if errs := egressselector.ValidateEgressSelectorConfiguration(cfg); len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	if len(cfg.EgressSelections) != 1 || cfg.EgressSelections[0].Name != "cluster" ||
		cfg.EgressSelections[0].Connection.ProxyProtocol != "GRPC" ||
		cfg.EgressSelections[0].Connection.Transport.UDS.UDSName != SocketPath {
		t.Errorf("egress selections %+v", cfg.EgressSelections)
	}
	if args := APIServerArgs(); len(args) != 1 || args[0] != "--egress-selector-config-file="+EgressSelectorConfigPath {
		t.Errorf("apiserver args %q", args)
	}
	if m := APIServerVolumeMounts(); len(m) != 1 || m[0].Name != VolumeSocket || m[0].MountPath != SocketDir {
		t.Errorf("apiserver mounts %+v", m)
	}
}

// The control-plane containers and volumes are core/v1 objects without unknown fields.
func TestControlPlaneAdditionsDecodeStrictly(t *testing.T) {
	res := render(t, request())
	strict := func(b []byte, out any) {
		t.Helper()
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(out); err != nil {
			t.Errorf("%v: %s", err, b)
		}
	}
	for _, b := range res.ControlPlane.Containers {
		strict(b, &corev1.Container{})
	}
	for _, b := range res.ControlPlane.Volumes {
		strict(b, &corev1.Volume{})
	}
	for _, b := range res.ControlPlane.APIServerVolumeMounts {
		strict(b, &corev1.VolumeMount{})
	}
}
