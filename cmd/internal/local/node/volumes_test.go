package node

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
