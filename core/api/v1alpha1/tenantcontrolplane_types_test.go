package v1alpha1

import (
	"slices"
	"testing"
)

func TestDataStoreNames(t *testing.T) {
	cases := []struct {
		name string
		tcp  TenantControlPlane
		want []string
	}{
		{name: "none yet", want: nil},
		{
			name: "spec only, before the first pass",
			tcp:  TenantControlPlane{Spec: TenantControlPlaneSpec{DataStore: "etcd-a"}},
			want: []string{"etcd-a"},
		},
		{
			name: "migrating: the status still names the source",
			tcp: TenantControlPlane{
				Spec:   TenantControlPlaneSpec{DataStore: "pg-b"},
				Status: TenantControlPlaneStatus{Storage: StorageStatus{DataStoreName: "etcd-a"}},
			},
			want: []string{"etcd-a", "pg-b"},
		},
		{
			name: "overrides by spec and by status, each once",
			tcp: TenantControlPlane{
				Spec: TenantControlPlaneSpec{
					DataStore:          "etcd-a",
					DataStoreOverrides: []DataStoreOverride{{Resource: "/events", DataStore: "etcd-events"}},
				},
				Status: TenantControlPlaneStatus{Storage: StorageStatus{
					DataStoreName: "etcd-a",
					Overrides: []StorageOverrideStatus{
						{DataStoreName: "etcd-events"},
						{DataStoreName: "etcd-old-events"},
					},
				}},
			},
			want: []string{"etcd-a", "etcd-events", "etcd-old-events"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.tcp.DataStoreNames(); !slices.Equal(got, c.want) {
				t.Fatalf("DataStoreNames() = %q, want %q", got, c.want)
			}
		})
	}
}
