package worker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sync"

	"github.com/openhcp/kamaji/cmd/internal/local/kubebuild"
)

// ErrNoImage is a Fill's answer for an image it does not make: the registry answers
// MANIFEST_UNKNOWN, and the pull fails at once.
var ErrNoImage = errors.New("no such image on this machine")

// ControlPlaneSource makes the control-plane images of the admin node's registry on their first
// pull: registry.k8s.io/kube-apiserver, kube-controller-manager and kube-scheduler of a version
// from the binaries in the cache, built first by hack/kube-bins.sh when they are not there yet
// (as the process node does). The pull waits meanwhile, as a slow pull does: the kubelet shows
// the pod Pulling the image. containerd gives up on a response after 30 s, so a pull waits at
// most the registry's Hold: past it, the answer (503) says how far the build is, the kubelet
// shows that in ErrImagePull and pulls again after its back-off (10 s, doubling up to 5 min).
type ControlPlaneSource struct {
	Cache    string // the kamaji cache folder (kube/<version>/bin)
	Registry string // the registry folder the images are written into
	// Builds runs the builds; nil or without a script: a version not in the cache is not found.
	Builds *kubebuild.Builds
	Logf   func(string, ...any)

	mu sync.Mutex
}

var (
	controlPlaneNames = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"}
	// releaseTag is a Kubernetes release's tag, the only refs worth a build.
	releaseTag = regexp.MustCompile(`^v1\.[0-9]+\.[0-9]+$`)
)

// Fill makes the image ns/name:ref if it is one of the control plane's (nil: look it up again).
func (s *ControlPlaneSource) Fill(ctx context.Context, ns, name, ref string) error {
	if (ns != "" && ns != "registry.k8s.io") || !slices.Contains(controlPlaneNames, name) || !releaseTag.MatchString(ref) {
		return ErrNoImage
	}
	bin := filepath.Join(s.Cache, "kube", ref, "bin")
	if !controlPlaneBuilt(bin) {
		if s.Builds == nil || s.Builds.Script == "" {
			return ErrNoImage
		}
		args := kubebuild.ControlPlane(ref)
		s.Builds.Forget(args) // built before, deleted since
		if st := s.Builds.Ensure(args); st.Started {
			s.logf("pull of %s/%s:%s: %s", ns, name, ref, st.Msg)
		}
		// Until the build ends or the registry stops holding the pull; then the kubelet pulls
		// again after its back-off, and is told where the build stands meanwhile.
		st := s.Builds.Wait(ctx, args)
		if !st.Done {
			return errors.New(st.Msg)
		}
		if !controlPlaneBuilt(bin) {
			return fmt.Errorf("hack/kube-bins.sh %v ended without the binaries in %s", args, bin)
		}
	}
	// The three images of the version at once: the kubelet pulls them side by side.
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := (Registry{Dir: s.Registry}).lookup(ns, name, ref); ok {
		return nil // made by a pull of its sibling meanwhile
	}
	imgs, err := ControlPlaneImages(bin, ref)
	if err != nil {
		return err
	}
	if _, err := BuildImages(s.Registry, imgs); err != nil {
		return err
	}
	s.logf("control-plane images of %s ready, from %s", ref, bin)
	return nil
}

func (s *ControlPlaneSource) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

func controlPlaneBuilt(bin string) bool {
	for _, n := range controlPlaneNames {
		if !fileExists(filepath.Join(bin, n)) {
			return false
		}
	}
	return true
}
