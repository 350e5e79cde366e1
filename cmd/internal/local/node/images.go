package node

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// DefaultImages is the image map the local plane starts with; `kamaji local up` writes it to
// <state>/images.yaml once, where it may be edited (the node reads it at every container start).
const DefaultImages = `# Container images the local node can run, mapped to binaries built on this machine.
# Rules are tried in order. In "image", * matches any text; in "dir" and "entrypoint", $1, $2...
# are what the stars matched and $cache is the kamaji cache folder (~/.cache/kamaji).
# "dir" is where the container's command is looked up (its PATH); "entrypoint" runs when the
# container has no command. "build", when "dir" does not exist, are the arguments of
# hack/kube-bins.sh that build it (the node runs it, once, and the container waits).
images:
  - image: registry.k8s.io/kube-apiserver:*
    dir: $cache/kube/$1/bin
    entrypoint: kube-apiserver
    build: kube-apiserver@$1 kube-controller-manager@$1 kube-scheduler@$1
  - image: registry.k8s.io/kube-controller-manager:*
    dir: $cache/kube/$1/bin
    entrypoint: kube-controller-manager
    build: kube-apiserver@$1 kube-controller-manager@$1 kube-scheduler@$1
  - image: registry.k8s.io/kube-scheduler:*
    dir: $cache/kube/$1/bin
    entrypoint: kube-scheduler
    build: kube-apiserver@$1 kube-controller-manager@$1 kube-scheduler@$1
  - image: registry.k8s.io/kube-proxy:*
    dir: $cache/kube/$1/bin
    entrypoint: kube-proxy
  - image: registry.k8s.io/etcd:*-*
    dir: $cache/etcd/v$1/bin
    entrypoint: etcd
  - image: registry.k8s.io/etcd:*
    dir: $cache/etcd/v$1/bin
    entrypoint: etcd
  - image: rancher/kine:*-amd64
    dir: $cache/kine/$1/bin
    entrypoint: kine
  - image: rancher/kine:*
    dir: $cache/kine/$1/bin
    entrypoint: kine
  - image: registry.k8s.io/kas-network-proxy/proxy-server:*
    dir: $cache/konnectivity/$1/bin
    entrypoint: proxy-server
  - image: registry.k8s.io/kas-network-proxy/proxy-agent:*
    dir: $cache/konnectivity/$1/bin
    entrypoint: proxy-agent
`

// ImageRule maps image references to a folder of binaries.
type ImageRule struct {
	Image      string `json:"image"`
	Dir        string `json:"dir"`
	Entrypoint string `json:"entrypoint,omitempty"`
	// Build are hack/kube-bins.sh arguments that build Dir when it is missing.
	Build string `json:"build,omitempty"`
}

// ImageMap is the parsed images.yaml.
type ImageMap struct {
	Path   string
	Cache  string
	Images []ImageRule `json:"images"`
}

// LoadImages reads an image map; a missing file means the default map.
func LoadImages(path, cache string) (*ImageMap, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		data, err = []byte(DefaultImages), nil
	}
	if err != nil {
		return nil, err
	}
	m := &ImageMap{}
	if err := yaml.UnmarshalStrict(data, m); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	m.Path, m.Cache = path, cache
	return m, nil
}

// Resolved is what a container image runs as on this machine.
type Resolved struct {
	// Dir is the container's PATH for its command.
	Dir string
	// Entrypoint is the binary run when the container gives no command.
	Entrypoint string
}

// UnknownImageError names an image no rule maps to an existing binary.
type UnknownImageError struct {
	Image  string
	Reason string
	// Build, when set, are the hack/kube-bins.sh arguments that build the missing folder.
	Build []string
}

func (e *UnknownImageError) Error() string {
	return fmt.Sprintf("image %q cannot run on the local node: %s", e.Image, e.Reason)
}

// Resolve maps an image reference to its binaries, and checks they exist.
func (m *ImageMap) Resolve(image string) (Resolved, error) {
	for _, r := range m.Images {
		groups, ok := matchGlob(r.Image, image)
		if !ok {
			continue
		}
		expand := func(s string) string {
			s = strings.ReplaceAll(s, "$cache", m.Cache)
			for i := len(groups); i >= 1; i-- {
				s = strings.ReplaceAll(s, fmt.Sprintf("$%d", i), groups[i-1])
			}
			return s
		}
		res := Resolved{Dir: expand(r.Dir), Entrypoint: expand(r.Entrypoint)}
		if st, err := os.Stat(res.Dir); err != nil || !st.IsDir() {
			return Resolved{}, &UnknownImageError{Image: image, Reason: fmt.Sprintf("it maps to %s (rule %q in %s), which does not exist: build it into the cache first", res.Dir, r.Image, m.Path),
				Build: strings.Fields(expand(r.Build))}
		}
		if res.Entrypoint != "" {
			if _, err := res.Lookup(res.Entrypoint); err != nil {
				return Resolved{}, &UnknownImageError{Image: image, Reason: err.Error()}
			}
		}
		return res, nil
	}
	return Resolved{}, &UnknownImageError{Image: image, Reason: "no rule of " + m.Path + " maps it to a local binary"}
}

// Lookup finds a command in the image's folder: a container cannot run the host's binaries.
func (r Resolved) Lookup(command string) (string, error) {
	p := filepath.Join(r.Dir, filepath.Base(command))
	st, err := os.Stat(p)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("command %q is not an executable in %s", command, r.Dir)
	}
	return p, nil
}

// matchGlob matches s against a pattern where * is any text, returning what each star matched.
func matchGlob(pattern, s string) ([]string, bool) {
	parts := strings.Split(pattern, "*")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	re, err := regexp.Compile("^" + strings.Join(parts, "(.*?)") + "$")
	if err != nil {
		return nil, false
	}
	m := re.FindStringSubmatch(s)
	if m == nil {
		return nil, false
	}
	return m[1:], true
}
