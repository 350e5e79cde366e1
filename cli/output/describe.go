package output

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cli/certs"
	"github.com/openhcp/kamaji/cli/kubeconfig"
	"github.com/openhcp/kamaji/cli/status"
)

// Description is what describe gathered about one TCP. A part that could not be read (a
// Secret it may not get, a DataStore gone) carries its error, shown in its section: the rest
// is still described.
type Description struct {
	TCP *kamajiv1alpha1.TenantControlPlane
	// DataStore the tenant uses; nil with DataStoreErr when it could not be read.
	DataStore    *kamajiv1alpha1.DataStore
	DataStoreErr string
	Certs        []certs.Cert
	CertErrors   []string
	// Events about the TCP, any order; the last MaxEvents are shown, oldest first.
	Events    []corev1.Event
	EventsErr string
	MaxEvents int
	Now       time.Time
}

// soon is when an expiry is flagged.
const soon = 30 * 24 * time.Hour

// Describe prints the describe view.
func Describe(w io.Writer, d Description) error {
	tcp := d.TCP
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	field := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t%s\n", name, fmt.Sprintf(format, args...))
	}
	field("Name", "%s", tcp.Name)
	field("Namespace", "%s", tcp.Namespace)
	field("Created", "%s (%s ago)", tcp.CreationTimestamp.UTC().Format(time.RFC3339), Age(tcp.CreationTimestamp.Time, d.Now))
	field("Status", "%s", StateColumn(tcp))
	if c := status.Condition(tcp, kamajiv1alpha1.ConditionReady); c != nil {
		field("Ready", "%s", status.Describe(*c))
	}
	field("Version", "%s", versionLine(tcp))
	field("Endpoint", "%s", orNone(tcp.Status.ControlPlaneEndpoint))
	field("Replicas", "%d desired, %d available", status.Replicas(tcp), tcp.Status.Kubernetes.Deployment.AvailableReplicas)
	field("Kubeconfig", "Secret %s (kubectl kamaji kubeconfig %s -n %s)", kubeconfig.SecretName(tcp), tcp.Name, tcp.Namespace)
	field("Generation", "%d (observed %d)", tcp.Generation, tcp.Status.ObservedGeneration)
	if status.Paused(tcp) {
		field("Paused", "yes: the manager does not reconcile it (kubectl kamaji resume %s -n %s)", tcp.Name, tcp.Namespace)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nConditions:")
	if len(tcp.Status.Conditions) == 0 {
		fmt.Fprintln(w, "  <none>")
	} else {
		conds := append(tcp.Status.Conditions[:0:0], tcp.Status.Conditions...)
		sort.SliceStable(conds, func(i, j int) bool { return conditionRank(conds[i].Type) < conditionRank(conds[j].Type) })
		t := newTable(&indent{w: w}, "TYPE", "STATUS", "REASON", "AGE", "MESSAGE")
		for _, c := range conds {
			t.row(c.Type, string(c.Status), orNone(c.Reason), Age(c.LastTransitionTime.Time, d.Now), status.OneLine(c.Message))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "\nCertificates:")
	if len(d.Certs) == 0 && len(d.CertErrors) == 0 {
		fmt.Fprintln(w, "  <none>")
	}
	if len(d.Certs) > 0 {
		t := newTable(&indent{w: w}, "SECRET", "KEY", "SUBJECT", "NOT AFTER", "EXPIRES")
		for _, c := range d.Certs {
			t.row(c.Secret, c.Key, c.Subject, c.NotAfter.UTC().Format(time.RFC3339), Expiry(c.NotAfter, d.Now))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	for _, e := range d.CertErrors {
		fmt.Fprintf(w, "  ! %s\n", e)
	}

	fmt.Fprintln(w, "\nDataStore:")
	describeStorage(w, d)

	fmt.Fprintln(w, "\nAddons:")
	describeAddons(w, tcp, d.Now)

	fmt.Fprintln(w, "\nEvents:")
	switch {
	case d.EventsErr != "":
		fmt.Fprintf(w, "  ! %s\n", d.EventsErr)
	case len(d.Events) == 0:
		fmt.Fprintln(w, "  <none>")
	default:
		evs := append([]corev1.Event(nil), d.Events...)
		sort.SliceStable(evs, func(i, j int) bool { return EventTime(&evs[i]).Before(EventTime(&evs[j])) })
		if n := d.MaxEvents; n > 0 && len(evs) > n {
			evs = evs[len(evs)-n:]
		}
		t := newTable(&indent{w: w}, "LAST SEEN", "TYPE", "REASON", "MESSAGE")
		for i := range evs {
			e := &evs[i]
			msg := status.OneLine(e.Message)
			if n := eventCount(e); n > 1 {
				msg += fmt.Sprintf(" (x%d)", n)
			}
			t.row(Age(EventTime(e), d.Now), e.Type, e.Reason, msg)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}

func versionLine(tcp *kamajiv1alpha1.TenantControlPlane) string {
	installed, wanted := tcp.Status.Kubernetes.Version.Version, tcp.Spec.Kubernetes.Version
	switch {
	case installed == "":
		return wanted + " (not installed yet)"
	case installed != wanted:
		return fmt.Sprintf("%s installed, %s wanted", installed, wanted)
	}
	return installed
}

// Expiry is "in 364d", "in 20d (soon)" or "EXPIRED 2d ago".
func Expiry(notAfter, now time.Time) string {
	left := notAfter.Sub(now)
	switch {
	case left <= 0:
		return "EXPIRED " + Age(notAfter, now) + " ago"
	case left < soon:
		return "in " + humanLeft(left) + " (soon)"
	}
	return "in " + humanLeft(left)
}

func humanLeft(d time.Duration) string { return duration.HumanDuration(d) }

func describeStorage(w io.Writer, d Description) {
	st := d.TCP.Status.Storage
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	field := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "  %s:\t%s\n", name, fmt.Sprintf(format, args...))
	}
	field("Name", "%s", orNone(DataStoreOf(d.TCP)))
	driver := st.Driver
	if driver == "" && d.DataStore != nil {
		driver = d.DataStore.Spec.Driver
	}
	field("Driver", "%s", orNone(driver))
	schema, user := st.Setup.Schema, st.Setup.User
	if schema == "" {
		schema = d.TCP.Spec.DataStoreSchema
	}
	if user == "" {
		user = d.TCP.Spec.DataStoreUsername
	}
	field("Schema", "%s", orNone(schema))
	field("User", "%s", orNone(user))
	if u := st.Usage; u != nil {
		line := orNone(Usage(u.Bytes, u.Keys))
		if !u.LastUpdate.IsZero() {
			line += fmt.Sprintf(" (reported %s ago)", Age(u.LastUpdate.Time, d.Now))
		}
		field("Usage", "%s", line)
	}
	if st.Certificate.SecretName != "" {
		field("Client certificate", "Secret %s", st.Certificate.SecretName)
	}
	if st.Config.SecretName != "" {
		field("Configuration", "Secret %s", st.Config.SecretName)
	}
	for _, o := range st.Overrides {
		field("Override", "DataStore %s (schema %s, user %s)", o.DataStoreName, orNone(o.Schema), orNone(o.User))
	}
	for _, o := range d.TCP.Spec.DataStoreOverrides {
		field("Override resource", "%s -> DataStore %s", o.Resource, o.DataStore)
	}
	switch {
	case d.DataStore != nil:
		if p := PluginColumn(d.DataStore); p != "" {
			field("Plugin", "%s", p)
		}
		field("DataStore ready", "%s", dataStoreReadyLine(d.DataStore))
	case d.DataStoreErr != "":
		field("Error", "! %s", d.DataStoreErr)
	}
	_ = tw.Flush()
}

func dataStoreReadyLine(ds *kamajiv1alpha1.DataStore) string {
	for _, c := range ds.Status.Conditions {
		if c.Type == "Ready" {
			return status.Describe(c)
		}
	}
	return "Unknown"
}

func describeAddons(w io.Writer, tcp *kamajiv1alpha1.TenantControlPlane, now time.Time) {
	spec, st := tcp.Spec.Addons, tcp.Status.Addons
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(name string, requested, enabled bool, last time.Time, extra string) {
		var s string
		switch {
		case !requested && !enabled:
			s = "not requested"
		case !requested:
			s = "not requested, still applied (being removed)"
		case !enabled:
			s = "requested, not applied yet"
		default:
			s = "applied"
			if !last.IsZero() {
				s += fmt.Sprintf(" (last change %s ago)", Age(last, now))
			}
		}
		if extra != "" && requested {
			s += "; " + extra
		}
		fmt.Fprintf(tw, "  %s:\t%s\n", name, s)
	}
	line("coreDNS", spec.CoreDNS != nil, st.CoreDNS.Enabled, st.CoreDNS.LastUpdate.Time, "")
	line("kubeProxy", spec.KubeProxy != nil, st.KubeProxy.Enabled, st.KubeProxy.LastUpdate.Time, "")
	extra := ""
	if k := spec.Konnectivity; k != nil {
		var parts []string
		if sv := k.KonnectivityServerSpec; sv.Version != "" || sv.Port != 0 {
			parts = append(parts, strings.TrimSpace(fmt.Sprintf("server %s port %d", sv.Version, sv.Port)))
		}
		if ag := k.KonnectivityAgentSpec; ag.Version != "" || ag.Mode != "" {
			parts = append(parts, strings.TrimSpace(fmt.Sprintf("agent %s %s", ag.Version, ag.Mode)))
		}
		extra = strings.Join(parts, ", ")
	}
	line("konnectivity", spec.Konnectivity != nil, st.Konnectivity.Enabled, st.Konnectivity.Agent.LastUpdate.Time, extra)
	if c := status.Condition(tcp, kamajiv1alpha1.ConditionAddonsReady); c != nil {
		fmt.Fprintf(tw, "  %s:\t%s\n", "AddonsReady", strings.TrimPrefix(status.Describe(*c), "AddonsReady="))
	}
	_ = tw.Flush()
}

// EventTime is when an event last happened, whichever API wrote it.
func EventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func eventCount(e *corev1.Event) int32 {
	if e.Series != nil && e.Series.Count > 0 {
		return e.Series.Count
	}
	return e.Count
}

func conditionRank(typ string) int {
	order := []string{
		kamajiv1alpha1.ConditionReady,
		kamajiv1alpha1.ConditionDataStoreReady,
		kamajiv1alpha1.ConditionServiceReady,
		kamajiv1alpha1.ConditionCertificatesReady,
		kamajiv1alpha1.ConditionKubeconfigsReady,
		kamajiv1alpha1.ConditionAddonsReady,
		kamajiv1alpha1.ConditionControlPlaneAvailable,
		kamajiv1alpha1.ConditionTenantConfigured,
	}
	for i, t := range order {
		if t == typ {
			return i
		}
	}
	return len(order)
}

// indent prefixes every line written through it with two spaces. tabwriter writes cell by
// cell, so it remembers whether it is at the start of a line.
type indent struct {
	w   io.Writer
	mid bool
}

func (in *indent) Write(p []byte) (int, error) {
	b := make([]byte, 0, len(p)+8)
	for _, c := range p {
		if !in.mid {
			b = append(b, ' ', ' ')
		}
		b = append(b, c)
		in.mid = c != '\n'
	}
	if _, err := in.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}
