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
// The node tries these rules after the file's own, so that a file written by an older version
// still maps the images of rules added since.
const DefaultImages = `# Container images the local node can run, mapped to binaries built on this machine.
# Rules are tried in order, then the node's built-in rules (these, as of its version). In
# "image", * matches the least text it can; in "dir" and "entrypoint", $1, $2... are what the
# stars matched, $cache is the kamaji cache folder (~/.cache/kamaji) and $bin the folder that
# make build fills (the repository's bin/).
# "dir" is where the container's command is looked up (its PATH); "entrypoint" runs when the
# container has no command. "build", when "dir" does not exist, are the arguments of
# hack/kube-bins.sh that build it (the node runs it, once, and the container waits).
# "imageDir" is where the binaries sit in the image's filesystem (default /usr/local/bin): an
# image volume shows "dir" there; set in a rule, the image's containers also see "dir" at that
# path (hiding the host's), as they would in the image.
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
  - image: "*/kamaji:*"
    dir: $bin
    entrypoint: kamaji
    imageDir: /usr/local/bin
  - image: "*/kamaji-*:*"
    dir: $bin
    entrypoint: kamaji-$2
    imageDir: /usr/local/bin
`

// ImageRule maps image references to a folder of binaries.
type ImageRule struct {
	Image      string `json:"image"`
	Dir        string `json:"dir"`
	Entrypoint string `json:"entrypoint,omitempty"`
	// Build are hack/kube-bins.sh arguments that build Dir when it is missing.
	Build string `json:"build,omitempty"`
	// ImageDir is where the binaries sit in the image's filesystem (DefaultImageDir when empty).
	ImageDir string `json:"imageDir,omitempty"`

	from string // the file the rule comes from, for messages
}

// DefaultImageDir is where an image's binaries sit when its rule does not say.
const DefaultImageDir = "/usr/local/bin"

// ImageMap is the parsed images.yaml.
type ImageMap struct {
	Path  string `json:"-"`
	Cache string `json:"-"`
	// Bin is the folder make build fills ($bin); empty: the rules that use it match nothing.
	Bin    string      `json:"-"`
	Images []ImageRule `json:"images"`
}

const defaultRulesName = "the node's built-in rules"

// LoadImages reads an image map, followed by the default rules (alone when the file is missing).
func LoadImages(path, cache string) (*ImageMap, error) {
	m := &ImageMap{}
	if err := yaml.UnmarshalStrict([]byte(DefaultImages), m); err != nil {
		return nil, fmt.Errorf("default image map: %v", err)
	}
	for i := range m.Images {
		m.Images[i].from = defaultRulesName
	}
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	if err == nil {
		file := &ImageMap{}
		if err := yaml.UnmarshalStrict(data, file); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		for i := range file.Images {
			file.Images[i].from = path
		}
		m.Images = append(file.Images, m.Images...)
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
	// ImageDir is where Dir's binaries sit in the image's filesystem (/usr/local/bin).
	ImageDir string
	// MountImageDir: the rule set imageDir, so the image's containers see Dir there.
	MountImageDir bool
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
		from := r.from
		if from == "" {
			from = m.Path
		}
		if strings.Contains(r.Dir, "$bin") && m.Bin == "" {
			return Resolved{}, &UnknownImageError{Image: image, Reason: fmt.Sprintf("rule %q in %s maps it to $bin, and the node has no --bin-dir", r.Image, from)}
		}
		expand := func(s string) string {
			s = strings.ReplaceAll(s, "$cache", m.Cache)
			s = strings.ReplaceAll(s, "$bin", m.Bin)
			for i := len(groups); i >= 1; i-- {
				s = strings.ReplaceAll(s, fmt.Sprintf("$%d", i), groups[i-1])
			}
			return s
		}
		res := Resolved{Dir: expand(r.Dir), Entrypoint: expand(r.Entrypoint), ImageDir: r.ImageDir, MountImageDir: r.ImageDir != ""}
		if res.ImageDir == "" {
			res.ImageDir = DefaultImageDir
		}
		if st, err := os.Stat(res.Dir); err != nil || !st.IsDir() {
			hint := "build it into the cache first"
			if strings.Contains(r.Dir, "$bin") {
				hint = "build it first (make build)"
			}
			return Resolved{}, &UnknownImageError{Image: image, Reason: fmt.Sprintf("it maps to %s (rule %q in %s), which does not exist: %s", res.Dir, r.Image, from, hint),
				Build: strings.Fields(expand(r.Build))}
		}
		if res.Entrypoint != "" {
			// The folder alone is not the build: hack/kube-bins.sh makes it before it builds,
			// and a version's folder may hold only some of its binaries (kubeadm for a worker).
			if _, err := res.Lookup(res.Entrypoint); err != nil {
				return Resolved{}, &UnknownImageError{Image: image, Reason: err.Error(), Build: strings.Fields(expand(r.Build))}
			}
		}
		return res, nil
	}
	return Resolved{}, &UnknownImageError{Image: image, Reason: "no rule of " + m.Path + " nor of " + defaultRulesName + " maps it to a local binary"}
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
// Stars match the least text they can: in "*/kamaji-*:*", $1 is the registry and repository
// path up to the first "/kamaji-" and $2 the name up to the tag's colon.
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
