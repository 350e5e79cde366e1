package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

func imageVolumePod(ref string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "kamaji-0", Namespace: "kamaji-system", UID: "uid-1"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "ghcr.io/openhcp/kamaji:0.3.0"}},
			Containers:     []corev1.Container{{Name: "manager", Image: "ghcr.io/openhcp/kamaji:0.3.0"}},
			Volumes: []corev1.Volume{{Name: "plugin-datastore-etcd", VolumeSource: corev1.VolumeSource{
				Image: &corev1.ImageVolumeSource{Reference: ref, PullPolicy: corev1.PullIfNotPresent},
			}}},
		},
	}
}

// An image volume looks like the image's filesystem: with the chart's subPath usr/local/bin,
// the container sees the plugin binary, the very file make build wrote (not a copy).
func TestImageVolume(t *testing.T) {
	bin := fakeBin(t, "kamaji", "kamaji-datastore-etcd")
	n := New(Config{ImagesFile: filepath.Join(t.TempDir(), "absent.yaml"), Cache: t.TempDir(), BinDir: bin}, fake.NewClientset())
	pod := imageVolumePod("ghcr.io/openhcp/kamaji-datastore-etcd:0.3.0")
	dir := t.TempDir()
	for range 2 { // made again when the pod's volumes are retried
		paths, err := n.materializeVolumes(context.Background(), pod, dir)
		if err != nil {
			t.Fatal(err)
		}
		got := filepath.Join(paths["plugin-datastore-etcd"], "usr/local/bin", "kamaji-datastore-etcd")
		st, err := os.Stat(got)
		if err != nil || st.Mode()&0o111 == 0 {
			t.Fatalf("%s: %v", got, err)
		}
		orig, _ := os.Stat(filepath.Join(bin, "kamaji-datastore-etcd"))
		if !os.SameFile(st, orig) {
			t.Errorf("%s is a copy, not the built binary", got)
		}
	}
}

// An image that maps to nothing fails the volume with an error naming the image, which the
// pod reports as a failed pull: containers wait in ErrImagePull, an event and a condition say why.
func TestImageVolumeUnknownImage(t *testing.T) {
	bin := fakeBin(t, "kamaji")
	n := New(Config{ImagesFile: filepath.Join(t.TempDir(), "absent.yaml"), Cache: t.TempDir(), BinDir: bin, Gateway: net.ParseIP("10.244.0.1")}, fake.NewClientset())
	rec := record.NewFakeRecorder(10)
	n.recorder = rec
	const ref = "ghcr.io/openhcp/kamaji-datastore-nope:0.3.0"
	pod := imageVolumePod(ref)
	_, err := n.materializeVolumes(context.Background(), pod, t.TempDir())
	var unknown *UnknownImageError
	if !errors.As(err, &unknown) || !strings.Contains(err.Error(), ref) {
		t.Fatalf("want an unknown image error naming %s, got %v", ref, err)
	}

	r := n.newRunner(pod)
	r.imageVolumeFailed(err)
	st := r.buildStatus(pod)
	for _, cs := range append(st.InitContainerStatuses, st.ContainerStatuses...) {
		if cs.State.Waiting == nil || cs.State.Waiting.Reason != "ErrImagePull" || !strings.Contains(cs.State.Waiting.Message, ref) {
			t.Errorf("container %s: %+v", cs.Name, cs.State)
		}
	}
	if ev := <-rec.Events; !strings.Contains(ev, "UnknownImage") || !strings.Contains(ev, ref) {
		t.Errorf("event %q", ev)
	}
	found := false
	for _, c := range st.Conditions {
		if c.Type == ConditionImagesResolved && c.Status == corev1.ConditionFalse && strings.Contains(c.Message, ref) {
			found = true
		}
	}
	if !found {
		t.Errorf("no ImagesResolved=False condition: %+v", st.Conditions)
	}

	// Once the image resolves, the containers go back to ContainerCreating.
	r.imageVolumeResolved()
	st = r.buildStatus(pod)
	if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "ContainerCreating" {
		t.Errorf("after resolution: %+v", st.ContainerStatuses[0].State)
	}
}

// A pod's volumes are written side by side: every Secret and ConfigMap lands in its own folder,
// and a failure reports the first failing volume in the pod's order, whichever failed first.
func TestMaterializeVolumes(t *testing.T) {
	var objs []runtime.Object
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "uid-2"}}
	for i := range 12 {
		name := fmt.Sprintf("secret-%02d", i)
		objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Data: map[string][]byte{"tls.crt": []byte(name)}})
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name}}})
	}
	objs = append(objs, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "default"}, Data: map[string]string{"a": "b"}})
	pod.Spec.Volumes = append(pod.Spec.Volumes,
		corev1.Volume{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
		corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	n := New(Config{ImagesFile: filepath.Join(t.TempDir(), "absent.yaml"), Cache: t.TempDir()}, fake.NewClientset(objs...))
	dir := t.TempDir()
	paths, err := n.materializeVolumes(context.Background(), pod, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(pod.Spec.Volumes) {
		t.Errorf("%d paths for %d volumes: %v", len(paths), len(pod.Spec.Volumes), paths)
	}
	for i := range 12 {
		name := fmt.Sprintf("secret-%02d", i)
		if data, err := os.ReadFile(filepath.Join(paths[name], "tls.crt")); err != nil || string(data) != name {
			t.Errorf("volume %s: %q %v", name, data, err)
		}
	}
	if data, err := os.ReadFile(filepath.Join(paths["cm"], "a")); err != nil || string(data) != "b" {
		t.Errorf("volume cm: %q %v", data, err)
	}
	if st, err := os.Stat(paths["scratch"]); err != nil || !st.IsDir() {
		t.Errorf("volume scratch: %v", err)
	}

	// Two missing Secrets: the error names the first of the pod's volumes that failed.
	missing := pod.DeepCopy()
	missing.Spec.Volumes[3].Secret.SecretName = "absent-a"
	missing.Spec.Volumes[9].Secret.SecretName = "absent-b"
	_, err = n.materializeVolumes(context.Background(), missing, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `volume "secret-03": secret "absent-a"`) {
		t.Errorf("two missing Secrets: %v, want the error of volume secret-03", err)
	}
}
