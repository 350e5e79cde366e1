package worker

import (
	"debug/elf"
	"os"
	"path/filepath"
)

// The images the admin cluster's node runs: the control plane's programs, built on this machine,
// in images laid out as upstream's.

const pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// caBundle is the host's CA certificates, which images carry at the same path.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// ProgramImage is an image of host programs (image path → host file), with the shared
// libraries a dynamically linked one loads (a cgo build runs too), a writable /tmp and the
// host's CA bundle.
func ProgramImage(ref string, programs map[string]string, entrypoint []string, user string) (Image, error) {
	files := []File{{Path: "tmp", Dir: true, Mode: 0o1777}}
	var dynamic []string
	for in, host := range programs {
		files = append(files, File{Path: in, From: host, Mode: 0o755})
		if f, err := elf.Open(host); err == nil {
			if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
				dynamic = append(dynamic, host)
			}
			f.Close()
		}
	}
	if len(dynamic) > 0 {
		libs, err := hostLibraries(dynamic...)
		if err != nil {
			return Image{}, err
		}
		for _, l := range libs {
			files = append(files, File{Path: l[1:], From: l, Mode: 0o755})
		}
	}
	if _, err := os.Stat(caBundle); err == nil {
		files = append(files, File{Path: caBundle[1:], From: caBundle, Mode: 0o644})
	}
	return Image{Ref: ref, Files: files, Entrypoint: entrypoint, Env: []string{pathEnv}, User: user}, nil
}

// ControlPlaneImages are registry.k8s.io/kube-apiserver, kube-controller-manager and
// kube-scheduler of a version, from the folder holding its binaries (at /usr/local/bin, as
// upstream).
func ControlPlaneImages(binDir, version string) ([]Image, error) {
	var out []Image
	for _, name := range controlPlaneNames {
		bin := filepath.Join(binDir, name)
		img, err := ProgramImage("registry.k8s.io/"+name+":"+version, map[string]string{"usr/local/bin/" + name: bin},
			[]string{"/usr/local/bin/" + name}, "")
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}
