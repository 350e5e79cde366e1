package controlplane

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestBuildObject(t *testing.T) {
	in := etcdInput()
	in.TCP.Spec.ControlPlane.Deployment.AdditionalMetadata = kamajiv1alpha1.AdditionalMetadata{
		Labels: map[string]string{
			"team":                   "blue",
			kamajiv1alpha1.NameLabel: "hijacked", // must not win over the selector labels
		},
		Annotations: map[string]string{"owner": "ops@example.com"},
	}
	d := mustBuild(t, in)

	if d.APIVersion != "apps/v1" || d.Kind != "Deployment" {
		t.Errorf("TypeMeta = %s %s, want apps/v1 Deployment (server-side apply needs it)", d.APIVersion, d.Kind)
	}
	if d.Name != "tenant-a" || d.Namespace != "tenants" {
		t.Errorf("object = %s/%s, want tenants/tenant-a", d.Namespace, d.Name)
	}
	if len(d.OwnerReferences) != 0 {
		t.Errorf("owner references are the caller's: %v", d.OwnerReferences)
	}
	wantLabels := map[string]string{
		"team":                        "blue",
		kamajiv1alpha1.NameLabel:      "tenant-a",
		kamajiv1alpha1.ManagedByLabel: kamajiv1alpha1.ManagedByValue,
	}
	if !equality.Semantic.DeepEqual(d.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", d.Labels, wantLabels)
	}
	if d.Annotations["owner"] != "ops@example.com" || len(d.Annotations) != 1 {
		t.Errorf("annotations = %v", d.Annotations)
	}
	if !equality.Semantic.DeepEqual(d.Spec.Selector.MatchLabels, in.Labels) {
		t.Errorf("selector = %v, want exactly the core labels %v", d.Spec.Selector.MatchLabels, in.Labels)
	}
}

func TestBuildPodTemplateMetadata(t *testing.T) {
	in := etcdInput()
	in.TCP.Spec.ControlPlane.Deployment.PodAdditionalMetadata = kamajiv1alpha1.AdditionalMetadata{
		Labels: map[string]string{"tier": "control-plane", kamajiv1alpha1.ManagedByLabel: "someone-else"},
		Annotations: map[string]string{
			"prometheus.io/scrape":    "true",
			SecretsChecksumAnnotation: "forged",
		},
	}
	d := mustBuild(t, in)
	meta := d.Spec.Template.ObjectMeta

	if meta.Labels["tier"] != "control-plane" {
		t.Errorf("pod labels lack the user's: %v", meta.Labels)
	}
	for k, v := range in.Labels {
		if meta.Labels[k] != v {
			t.Errorf("pod label %s = %q, want %q: the selector must match the pods", k, meta.Labels[k], v)
		}
	}
	if meta.Annotations["prometheus.io/scrape"] != "true" {
		t.Errorf("pod annotations lack the user's: %v", meta.Annotations)
	}
	if got := meta.Annotations[SecretsChecksumAnnotation]; got != "sha256:abc" {
		t.Errorf("checksum annotation = %q, want the Input's", got)
	}
	if len(d.Annotations) != 0 {
		t.Errorf("pod annotations leaked onto the Deployment: %v", d.Annotations)
	}
}

// A changed Secret must change the pod template, which is what rolls the pods.
func TestBuildChecksumRollsPods(t *testing.T) {
	a := etcdInput()
	b := etcdInput()
	b.SecretsChecksum = "sha256:def"
	da, db := mustBuild(t, a), mustBuild(t, b)
	if equality.Semantic.DeepEqual(da.Spec.Template, db.Spec.Template) {
		t.Fatal("pod templates are equal although the Secrets changed")
	}
	a.SecretsChecksum = ""
	if _, ok := mustBuild(t, a).Spec.Template.Annotations[SecretsChecksumAnnotation]; ok {
		t.Error("an empty checksum should not be written")
	}
}

func TestBuildReplicas(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec *int32
		want int32
	}{
		{"CRD default when unset", nil, 2},
		{"zero is kept (sleeping tenant)", ptr.To[int32](0), 0},
		{"explicit", ptr.To[int32](3), 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := etcdInput()
			in.TCP.Spec.ControlPlane.Deployment.Replicas = tt.spec
			if got := *mustBuild(t, in).Spec.Replicas; got != tt.want {
				t.Errorf("replicas = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBuildStrategy(t *testing.T) {
	blueGreen := appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			MaxSurge:       ptr.To(intstr.FromString("100%")),
		},
	}
	rolling := appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			MaxSurge:       ptr.To(intstr.FromInt32(0)),
		},
	}
	for _, tt := range []struct {
		name       string
		spec, want appsv1.DeploymentStrategy
	}{
		{"empty means blue/green", appsv1.DeploymentStrategy{}, blueGreen},
		{"Recreate kept", appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}},
		{"custom rolling update kept", rolling, rolling},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := etcdInput()
			in.TCP.Spec.ControlPlane.Deployment.Strategy = tt.spec
			if got := mustBuild(t, in).Spec.Strategy; !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("strategy = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Write blocking is enforced elsewhere; toggling it must not roll the control plane.
func TestBuildIgnoresWritePermissions(t *testing.T) {
	open := etcdInput()
	blocked := etcdInput()
	blocked.TCP.Spec.WritePermissions = kamajiv1alpha1.Permissions{BlockCreate: true, BlockUpdate: true, BlockDelete: true}
	if !bytes.Equal(marshal(t, mustBuild(t, open)), marshal(t, mustBuild(t, blocked))) {
		t.Error("writePermissions changed the Deployment")
	}
}

func TestBuildContainerOrder(t *testing.T) {
	in := kineInput()
	in.Additions.Containers = []corev1.Container{{Name: "zz-addon", Image: "z"}, {Name: "konnectivity-server", Image: "k"}}
	in.TCP.Spec.ControlPlane.Deployment.AdditionalContainers = []corev1.Container{{Name: "user-b", Image: "b"}, {Name: "user-a", Image: "a"}}
	got := containerNames(mustBuild(t, in).Spec.Template.Spec.Containers)
	want := []string{APIServerContainer, ControllerManagerContainer, SchedulerContainer, KineContainer, "konnectivity-server", "zz-addon", "user-b", "user-a"}
	if !slices.Equal(got, want) {
		t.Errorf("containers = %v, want %v", got, want)
	}
}

// fullInput sets every deployment field, so that determinism and aliasing are checked on all of them.
func fullInput() Input {
	in := kineInput()
	in.Additions = PodAdditions{
		Containers:            []corev1.Container{{Name: "b-addon", Image: "b"}, {Name: "a-addon", Image: "a"}},
		Volumes:               []corev1.Volume{{Name: "b-vol"}, {Name: "a-vol"}},
		APIServerArgs:         []string{"--egress-selector-config-file=/etc/konnectivity/egress.yaml"},
		APIServerVolumeMounts: []corev1.VolumeMount{{Name: "a-vol", MountPath: "/etc/konnectivity"}},
	}
	dep := &in.TCP.Spec.ControlPlane.Deployment
	dep.NodeSelector = map[string]string{"b": "2", "a": "1", "c": "3"}
	dep.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "cp", Effect: corev1.TaintEffectNoSchedule}}
	dep.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: corev1.DoNotSchedule}}
	dep.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{
		APIServer:         []string{"--v=4", "--audit-log-path=-"},
		ControllerManager: []string{"--v=2"},
		Scheduler:         []string{"--v=3"},
		Kine:              []string{"--debug"},
	}
	dep.Resources = &kamajiv1alpha1.ControlPlaneComponentsResources{
		APIServer: &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("512Mi")}},
	}
	dep.AdditionalVolumes = []corev1.Volume{{Name: "audit", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	dep.AdditionalVolumeMounts = &kamajiv1alpha1.AdditionalVolumeMounts{APIServer: []corev1.VolumeMount{{Name: "audit", MountPath: "/var/log/audit"}}}
	dep.PodAdditionalMetadata.Annotations = map[string]string{"z": "1", "a": "2"}
	dep.SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false)}
	dep.ContainerSecurityContexts = &kamajiv1alpha1.ControlPlaneContainerSecurityContexts{
		APIServer: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true)},
	}
	dep.AutomountServiceAccountToken = ptr.To(false)
	return in
}

func marshal(t *testing.T, d *appsv1.Deployment) []byte {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildIsDeterministic(t *testing.T) {
	first := marshal(t, mustBuild(t, fullInput()))
	for range 20 {
		if again := marshal(t, mustBuild(t, fullInput())); !bytes.Equal(first, again) {
			t.Fatalf("two builds differ:\n%s\n%s", first, again)
		}
	}

	// Orders that carry no meaning (addons, kine files, overrides) must not show.
	in := fullInput()
	slices.Reverse(in.Additions.Containers)
	slices.Reverse(in.Additions.Volumes)
	slices.Reverse(in.Kine.Files)
	if shuffled := marshal(t, mustBuild(t, in)); !bytes.Equal(first, shuffled) {
		t.Fatalf("reordering unordered inputs changed the Deployment:\n%s\n%s", first, shuffled)
	}
	a, b := etcdInput(), etcdInput()
	a.EtcdServersOverrides = []string{"/events#https://e1:2379;https://e2:2379", "apps/deployments#https://d:2379"}
	b.EtcdServersOverrides = slices.Clone(a.EtcdServersOverrides)
	slices.Reverse(b.EtcdServersOverrides)
	if !bytes.Equal(marshal(t, mustBuild(t, a)), marshal(t, mustBuild(t, b))) {
		t.Fatal("reordering the etcd overrides changed the Deployment")
	}
}

// The Deployment must not alias the Input: the caller's cache object must survive any edit of it.
func TestBuildDoesNotAliasInput(t *testing.T) {
	in := fullInput()
	before := in.TCP.DeepCopy()
	additions := marshalAny(t, in.Additions)
	kine := marshalAny(t, in.Kine)
	labels := marshalAny(t, in.Labels)

	d := mustBuild(t, in)
	ps := &d.Spec.Template.Spec
	for i := range ps.Containers {
		c := &ps.Containers[i]
		c.Name += "-x"
		for j := range c.Args {
			c.Args[j] += "-x"
		}
		for j := range c.Env {
			c.Env[j].Name += "-x"
		}
		for j := range c.VolumeMounts {
			c.VolumeMounts[j].MountPath += "-x"
		}
		if c.SecurityContext != nil {
			c.SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
		}
		for k := range c.Resources.Requests {
			c.Resources.Requests[k] = resource.MustParse("9")
		}
	}
	for i := range ps.Volumes {
		ps.Volumes[i].Name += "-x"
		if s := ps.Volumes[i].Secret; s != nil {
			for j := range s.Items {
				s.Items[j].Path += "-x"
			}
		}
	}
	ps.Tolerations[0].Key = "x"
	*ps.AutomountServiceAccountToken = true
	ps.NodeSelector["a"] = "x"
	ps.TopologySpreadConstraints[0].LabelSelector.MatchLabels["x"] = "x"
	d.Labels["x"] = "x"
	d.Spec.Selector.MatchLabels["x"] = "x"
	d.Spec.Template.Labels["x"] = "x"
	d.Spec.Template.Annotations["x"] = "x"

	if !equality.Semantic.DeepEqual(before, in.TCP) {
		t.Error("editing the Deployment changed the TenantControlPlane")
	}
	if !bytes.Equal(additions, marshalAny(t, in.Additions)) || !bytes.Equal(kine, marshalAny(t, in.Kine)) || !bytes.Equal(labels, marshalAny(t, in.Labels)) {
		t.Error("editing the Deployment changed the Input")
	}
}

func marshalAny(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
