package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ContainerSpec is what the run-container helper needs to turn itself into a container
// process: it is started by the node in a new mount and UTS namespace, joins the pod's network
// namespace, bind-mounts the pod's volumes at their container paths and execs the binary.
type ContainerSpec struct {
	NetNS    string  `json:"netns"`
	Hostname string  `json:"hostname"`
	Mounts   []Mount `json:"mounts"`
	// Scratch holds the overlay layers that make room for mount points missing on the host
	// (such as /etc/kubernetes): the host's folders are never written to.
	Scratch string   `json:"scratch"`
	Path    string   `json:"path"`
	Args    []string `json:"args"`
	Env     []string `json:"env"`
	Dir     string   `json:"dir,omitempty"`
}

// Mount is one bind mount into the container's view of the host filesystem.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// RunContainer is the helper's body (`kamaji local run-container SPEC`). It only returns on
// error: on success the process image is replaced by the container's binary.
func RunContainer(specPath string) error {
	// setns(CLONE_NEWNET) changes the calling thread only: exec from that same thread.
	runtime.LockOSThread()
	data, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	var spec ContainerSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("%s: %v", specPath, err)
	}
	// Open the network namespace before mounting anything: an overlay on /run would hide it.
	netns := -1
	if spec.NetNS != "" {
		if netns, err = unix.Open(spec.NetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("open network namespace: %w", err)
		}
	}
	// The node started us in a new mount namespace (Unshareflags); make sure nothing we mount
	// propagates back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private: %w", err)
	}
	// Whatever comes from the host is opened before the first mount: a volume mounted at /tmp
	// (the manager's) hides every host path under /tmp, such as the state folder of a plane a
	// test started there, with its volumes, scratch space and binaries.
	sources := make([]Mount, len(spec.Mounts))
	for i, m := range spec.Mounts {
		fd, err := unix.Open(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("mount %s at %s: %w", m.Source, m.Target, err)
		}
		sources[i] = Mount{Source: fdPath(fd), Target: m.Target, ReadOnly: m.ReadOnly}
	}
	if err := os.MkdirAll(spec.Scratch, 0o755); err != nil {
		return err
	}
	scratch, err := unix.Open(spec.Scratch, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("scratch space: %w", err)
	}
	exe := spec.Path
	if hiddenBy(spec.Path, spec.Mounts) && !underTarget(spec.Path, spec.Mounts) {
		fd, err := unix.Open(spec.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		exe = fdPath(fd)
	}
	ov := &overlays{scratch: fdPath(scratch)}
	for i, m := range sources {
		if err := ov.bind(m); err != nil {
			return fmt.Errorf("mount %s at %s: %w", spec.Mounts[i].Source, m.Target, err)
		}
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("sethostname: %w", err)
		}
	}
	if netns >= 0 {
		if err := unix.Setns(netns, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("join network namespace %s: %w", spec.NetNS, err)
		}
		unix.Close(netns)
	}
	if spec.Dir != "" {
		if err := os.MkdirAll(spec.Dir, 0o755); err == nil {
			_ = os.Chdir(spec.Dir)
		}
	} else {
		_ = os.Chdir("/")
	}
	return unix.Exec(exe, spec.Args, spec.Env)
}

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// hiddenBy: a mount target covers path (the host's file is out of sight once mounted).
func hiddenBy(path string, mounts []Mount) bool {
	for _, m := range mounts {
		if t := filepath.Clean(m.Target); path == t || strings.HasPrefix(path, strings.TrimSuffix(t, "/")+"/") {
			return true
		}
	}
	return false
}

// underTarget: path is a container path the node resolved in a volume (volumeCommand), to be
// found there once mounted, not a host path.
func underTarget(path string, mounts []Mount) bool {
	for _, m := range mounts {
		if t := filepath.Clean(m.Target); strings.HasPrefix(path, strings.TrimSuffix(t, "/")+"/") {
			if _, err := os.Stat(filepath.Join(m.Source, strings.TrimPrefix(path, t))); err == nil {
				return true
			}
		}
	}
	return false
}

type overlays struct {
	scratch string
	n       int
	done    []string // real paths already overlaid
}

func (o *overlays) bind(m Mount) error {
	st, err := os.Stat(m.Source)
	if err != nil {
		return err
	}
	if err := o.ensureTarget(m.Target, st.IsDir()); err != nil {
		return err
	}
	if err := unix.Mount(m.Source, m.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if m.ReadOnly {
		if err := unix.Mount("", m.Target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("read-only remount: %w", err)
		}
	}
	return nil
}

// ensureTarget makes the mount point exist. When a folder on the way is missing on the host,
// the deepest existing ancestor is covered with an overlay whose upper layer is scratch space,
// so the mount point is created there and the host's tree stays untouched.
func (o *overlays) ensureTarget(target string, dir bool) error {
	if st, err := os.Stat(target); err == nil {
		if st.IsDir() != dir {
			return fmt.Errorf("%s exists and is not a %s", target, map[bool]string{true: "folder", false: "file"}[dir])
		}
		return nil
	}
	if !o.covered(target) {
		anc := filepath.Dir(target)
		for {
			if _, err := os.Stat(anc); err == nil {
				break
			}
			anc = filepath.Dir(anc)
		}
		real, err := filepath.EvalSymlinks(anc)
		if err != nil {
			return err
		}
		if real == "/" {
			return errors.New("no folder on the way exists on the host but /")
		}
		if err := o.overlay(real); err != nil {
			return err
		}
	}
	if dir {
		return os.MkdirAll(target, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

func (o *overlays) covered(target string) bool {
	real := target
	// Resolve as much of the path as exists, to compare real paths.
	for p := target; p != "/"; p = filepath.Dir(p) {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			real = filepath.Join(r, strings.TrimPrefix(target, p))
			break
		}
	}
	for _, d := range o.done {
		if real == d || strings.HasPrefix(real, d+"/") {
			return true
		}
	}
	return false
}

func (o *overlays) overlay(dir string) error {
	o.n++
	base := filepath.Join(o.scratch, strconv.Itoa(o.n))
	upper, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	opts := "lowerdir=" + dir + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", dir, "overlay", 0, opts); err != nil {
		return fmt.Errorf("overlay on %s: %w", dir, err)
	}
	o.done = append(o.done, dir)
	return nil
}
