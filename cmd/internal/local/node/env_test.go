package node

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The chart's plugin init containers run the kamaji binary an earlier init container copied
// into an emptyDir; anything else comes from the image's folder.
func TestCommandLineFromVolume(t *testing.T) {
	bin := fakeBin(t, "kamaji")
	img := Resolved{Dir: bin, Entrypoint: "kamaji-datastore-etcd", ImageDir: DefaultImageDir}
	installer := fakeBin(t, "kamaji")
	if err := os.WriteFile(filepath.Join(installer, "notes"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mounts := []Mount{
		{Source: t.TempDir(), Target: "/opt/kamaji"},
		{Source: installer, Target: "/opt/kamaji/installer", ReadOnly: true},
		{Source: "/tmp/hosts", Target: "/etc/hosts"},
	}
	c := &corev1.Container{Name: "install-datastore-etcd",
		Command: []string{"/opt/kamaji/installer/kamaji", "plugin", "install"},
		Args:    []string{"/usr/local/bin/kamaji-datastore-etcd", "/opt/kamaji/plugins/datastore-etcd"}}
	path, argv, err := commandLine(c, img, nil, mounts)
	if err != nil {
		t.Fatal(err)
	}
	// The container path: the helper execs it once the volume is mounted there.
	if path != "/opt/kamaji/installer/kamaji" || !reflect.DeepEqual(argv, append(append([]string{}, c.Command...), c.Args...)) {
		t.Errorf("got %s %q", path, argv)
	}

	// Not in the volume (yet): a container error naming the command and the mount.
	c.Command[0] = "/opt/kamaji/installer/missing"
	if _, _, err := commandLine(c, img, nil, mounts); err == nil || !strings.Contains(err.Error(), "/opt/kamaji/installer/missing") || !strings.Contains(err.Error(), "mounted at /opt/kamaji/installer") {
		t.Errorf("missing command: %v", err)
	}
	c.Command[0] = "/opt/kamaji/installer/notes"
	if _, _, err := commandLine(c, img, nil, mounts); err == nil {
		t.Error("a file that is not executable must not run")
	}

	// Outside every mount: the image's folder, by name.
	c.Command = []string{"/usr/local/bin/kamaji", "plugin", "install"}
	path, argv, err = commandLine(c, img, nil, mounts)
	if err != nil || path != filepath.Join(bin, "kamaji") || argv[0] != "kamaji" {
		t.Errorf("image command: %s %q %v", path, argv, err)
	}
	// /opt/kamajiX is not under /opt/kamaji.
	if _, ok, _ := volumeCommand("/opt/kamajiX/kamaji", mounts); ok {
		t.Error("a sibling path must not count as inside the mount")
	}
}
