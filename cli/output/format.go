// Package output prints what the CLI reads: tables (plain and wide) for tenants and
// DataStores, the objects as JSON or YAML, and the describe view. Pure functions of the
// objects and a clock, so every format is unit-tested.
package output

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
)

// Format is an -o value.
type Format string

const (
	Table Format = ""
	Wide  Format = "wide"
	JSON  Format = "json"
	YAML  Format = "yaml"
)

// ParseFormat checks an -o value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Table, Wide, JSON, YAML:
		return f, nil
	}
	return "", fmt.Errorf("unknown output format %q: use json, yaml or wide", s)
}

// Age is kubectl's AGE column: "5m", "3h", "12d", "<unknown>" for a zero time.
func Age(t, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t))
}

// Bytes is a size in binary units: "512 B", "1.5 KiB", "3.2 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Usage is "<bytes>, <keys> keys", with whichever the driver reported; "" when neither.
func Usage(bytes, keys *int64) string {
	var parts []string
	if bytes != nil {
		parts = append(parts, Bytes(*bytes))
	}
	if keys != nil {
		parts = append(parts, fmt.Sprintf("%d keys", *keys))
	}
	return strings.Join(parts, ", ")
}

// Truncate shortens s to n runes by cutting its middle out: a status message names what waits
// first and the cause last ("...: CrashLoopBackOff (last exit code 1: Error: unknown flag:
// --x)"), and both are worth a column. The cut falls on spaces where it can.
func Truncate(s string, n int) string {
	r := []rune(s)
	if n <= 0 || len(r) <= n {
		return s
	}
	const gap = " ... "
	if n <= 3 {
		return string(r[:n])
	}
	if n < 20 {
		return string(r[:n-3]) + "..."
	}
	head := n / 4
	tail := n - head - len(gap)
	h, t := r[:head], r[len(r)-tail:]
	// On a word's edge, unless that throws away more than a fifth of the part.
	if i := lastSpace(h); i >= head*4/5 {
		h = h[:i]
	}
	if i := slices.Index(t, ' '); i >= 0 && i <= tail/5 {
		t = t[i+1:]
	}
	return string(h) + gap + string(t)
}

func lastSpace(r []rune) int {
	for i := len(r) - 1; i >= 0; i-- {
		if r[i] == ' ' {
			return i
		}
	}
	return -1
}

// orNone is kubectl's "<none>" for an empty cell.
func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// table writes aligned columns as kubectl does (tabwriter, three spaces of padding), without
// the trailing blanks an empty last column leaves.
type table struct {
	out io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func newTable(w io.Writer, headers ...string) *table {
	t := &table{out: w}
	t.tw = tabwriter.NewWriter(&t.buf, 6, 4, 3, ' ', 0)
	t.row(headers...)
	return t
}

func (t *table) row(cols ...string) {
	for i, c := range cols {
		// A tab or newline inside a cell would break the alignment.
		cols[i] = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}

func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(t.buf.String(), "\n") {
		if line, ok := strings.CutSuffix(l, "\n"); ok {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
		} else {
			b.WriteString(l)
		}
	}
	_, err := io.WriteString(t.out, b.String())
	return err
}
