package conformance

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// Status is the outcome of a check.
type Status string

const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Result is one check's outcome. Reason says why it failed or was skipped (a skip for a missing
// capability names it) or, for a pass, what was verified.
type Result struct {
	Name        string
	Description string
	Status      Status
	Reason      string
	Duration    time.Duration
}

// Report is the outcome of Verify.
type Report struct {
	Plugin       datastore.PluginInfo
	Capabilities []datastore.Capability
	Results      []Result
}

// Passed reports whether no check failed.
func (r Report) Passed() bool { return r.Count(Fail) == 0 }

// Count returns how many checks have status s.
func (r Report) Count(s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

// Print writes a human-readable report, one line per check.
func (r Report) Print(w io.Writer) error {
	caps := make([]string, len(r.Capabilities))
	for i, c := range r.Capabilities {
		caps[i] = c.String()
	}
	name := r.Plugin.Name
	if name == "" {
		name = "(unknown plugin)"
	}
	if _, err := fmt.Fprintf(w, "plugin:       %s %s (drivers: %s)\ncapabilities: %s\n\n",
		name, r.Plugin.VendorVersion, strings.Join(r.Plugin.Drivers, ", "), strings.Join(caps, ", ")); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, res := range r.Results {
		reason := strings.ReplaceAll(res.Reason, "\n", " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.Status, res.Name, res.Duration.Round(time.Millisecond), reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d passed, %d failed, %d skipped\n", r.Count(Pass), r.Count(Fail), r.Count(Skip))
	return err
}
