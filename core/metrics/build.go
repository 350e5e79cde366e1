package metrics

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

var buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "kamaji_build_info",
	Help: "Always 1; the labels say which build of the manager runs: version, Go version, VCS commit.",
}, []string{"version", "go_version", "commit"})

func init() { SetVersion("") }

// SetVersion records the manager's version (the binary's -X main.version); empty keeps the Go
// module's version. The commit is the one the Go toolchain stamped ("unknown" when the binary
// was built without VCS information, as with -buildvcs=false).
func SetVersion(version string) {
	commit := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				commit = s.Value
			}
		}
	}
	if version == "" {
		version = "unknown"
	}
	buildInfo.Reset()
	buildInfo.WithLabelValues(version, runtime.Version(), commit).Set(1)
}
