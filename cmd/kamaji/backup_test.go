package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Backup and restore refuse bad input with one line naming the flag or the cause, before
// reaching any cluster (KUBECONFIG points nowhere) or writing anything.
func TestBackupRestoreBadInput(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "not-a-backup.kbk")
	if err := os.WriteFile(garbage, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"backup without --tenant":   {[]string{"backup", "--output", "x"}, `required flag(s) "tenant" not set`},
		"backup without --output":   {[]string{"backup", "--tenant", "default/a"}, "--output: give a file, or - for stdout"},
		"backup, --tenant no ns":    {[]string{"backup", "--tenant", "a", "--output", "x"}, `--tenant "a": want NAMESPACE/NAME`},
		"restore without --input":   {[]string{"restore", "--tenant", "default/a"}, "--input: give a file, or - for stdin"},
		"restore of a damaged file": {[]string{"restore", "--tenant", "default/a", "--input", garbage}, "not-a-backup.kbk: not a valid tenant backup: not gzip"},
	} {
		t.Run(name, func(t *testing.T) {
			out, code := runKamaji(t, nil, c.args...)
			line := strings.TrimSpace(out)
			if code == 0 || strings.Count(line, "\n") != 0 || !strings.Contains(line, c.want) {
				t.Fatalf("exit %d, output %q; want one line with %q", code, out, c.want)
			}
		})
	}
}
