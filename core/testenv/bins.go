package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Versions of the binaries the test planes run; keep in step with hack/kube-bins.sh.
const (
	KubeVersion = "v1.37.2"
	EtcdVersion = "v3.6.16"
)

var buildOnce sync.Once

// Binary returns the path of a cached Kubernetes or etcd binary, building the cache with
// hack/kube-bins.sh on first use (minutes when cold, nothing afterwards).
func Binary(name string) (string, error) {
	path := cachedPath(name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	var buildErr error
	buildOnce.Do(func() { buildErr = runKubeBins() })
	if buildErr != nil {
		return "", buildErr
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s not found at %s after hack/kube-bins.sh: %w", name, path, err)
	}
	return path, nil
}

func cachedPath(name string) string {
	if name == "etcd" {
		if bin := os.Getenv("KAMAJI_ETCD_BIN"); bin != "" {
			return bin // the etcd binary itself, as sdk/testkit reads it
		}
		return filepath.Join(cacheDir(), "etcd", EtcdVersion, "bin", name)
	}
	if dir := os.Getenv("KAMAJI_KUBE_BIN"); dir != "" {
		return filepath.Join(dir, name)
	}
	return filepath.Join(cacheDir(), "kube", KubeVersion, "bin", name)
}

func cacheDir() string {
	if d := os.Getenv("KAMAJI_CACHE"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "kamaji")
}

func runKubeBins() error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(root, "hack", "kube-bins.sh"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hack/kube-bins.sh: %w", err)
	}
	return nil
}

// RepoRoot finds the monorepo root (the folder holding go.work) from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.work not found above the working directory")
		}
		dir = parent
	}
}
