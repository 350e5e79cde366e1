package controlplane

import (
	"strings"
	"testing"
)

func TestBuildRejectsInvalidInput(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Input)
		want   []string
	}{
		{"no TenantControlPlane", func(in *Input) { in.TCP = nil }, []string{"Input.TCP is required"}},
		{"no version", func(in *Input) { in.TCP.Spec.Kubernetes.Version = "" }, []string{"spec.kubernetes.version"}},
		{"no namespace", func(in *Input) { in.TCP.Namespace = "" }, []string{"name and namespace"}},
		{"no selector labels", func(in *Input) { in.Labels = nil }, []string{"Input.Labels"}},
		{"no storage", func(in *Input) { in.Etcd = nil }, []string{"exactly one of Input.Etcd and Input.Kine"}},
		{"both storages", func(in *Input) { in.Kine = kineInput().Kine }, []string{"not both"}},
		{"etcd without servers", func(in *Input) { in.Etcd.Servers = nil }, []string{"Input.Etcd.Servers"}},
		{"etcd without prefix", func(in *Input) { in.Etcd.Prefix = "" }, []string{"Input.Etcd.Prefix"}},
		{"etcd without certificate", func(in *Input) { in.Etcd.CertSecret = "" }, []string{"Input.Etcd.CertSecret"}},
		{"kine without image", func(in *Input) { in.Etcd = nil; in.Kine = kineInput().Kine; in.Kine.Image = "" }, []string{"Input.Kine.Image"}},
		{"kine files without secret", func(in *Input) { in.Etcd = nil; in.Kine = kineInput().Kine; in.Kine.FilesSecret = "" }, []string{"Input.Kine.FilesSecret"}},
		{"overrides without etcd storage", func(in *Input) {
			in.Etcd = nil
			in.Kine = kineInput().Kine
			in.EtcdServersOverrides = []string{"/events#https://e:2379"}
		}, []string{"need Input.Etcd"}},
		{"malformed override", func(in *Input) { in.EtcdServersOverrides = []string{"/events"} }, []string{`"/events"`}},
		{
			"every missing secret is named at once",
			func(in *Input) { in.Secrets.CA = ""; in.Secrets.SchedulerKubeconfig = "" },
			[]string{"Input.Secrets.CA ", "Input.Secrets.SchedulerKubeconfig"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := etcdInput()
			tt.mutate(&in)
			d, err := Build(in)
			if err == nil {
				t.Fatalf("Build accepted the input: %v", d.Name)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error()+" ", w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestBuildAcceptsCompleteInputs(t *testing.T) {
	for name, in := range map[string]Input{"etcd": etcdInput(), "kine": kineInput()} {
		if _, err := Build(in); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
