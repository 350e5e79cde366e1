package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPluginInstallCopiesAtomicallyWithMode0555(t *testing.T) {
	src := filepath.Join(t.TempDir(), "kamaji-datastore-example")
	body := []byte("#!/bin/false\nnot really a plugin\n")
	if err := os.WriteFile(src, body, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "plugins", "datastore-example") // created on the way
	sum := sha256.Sum256(body)

	for range 2 { // the second run replaces the (read-only) binary the first one installed
		out, code := runKamaji(t, nil, "plugin", "install", src, dir)
		target := filepath.Join(dir, "kamaji-datastore-example")
		if code != 0 || out != "installed "+target+" (sha256 "+hex.EncodeToString(sum[:])+")\n" {
			t.Fatalf("exit %d, output %q", code, out)
		}
		st, err := os.Stat(target)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o555 {
			t.Errorf("mode %v, want 0555", st.Mode().Perm())
		}
		got, err := os.ReadFile(target)
		if err != nil || string(got) != string(body) {
			t.Fatalf("content %q, %v", got, err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("a temporary file was left behind: %v", entries)
		}
	}
}

func TestPluginInstallRefusesBadInput(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"missing source":    {[]string{filepath.Join(tmp, "nope"), tmp}, "plugin install: source " + filepath.Join(tmp, "nope") + ": no such file or directory"},
		"directory source":  {[]string{tmp, filepath.Join(tmp, "out")}, "plugin install: source " + tmp + ": not a regular file"},
		"directory is file": {[]string{file, file}, "plugin install: directory " + file + ": not a directory"},
		"one argument":      {[]string{file}, "accepts 2 arg(s), received 1"},
	} {
		t.Run(name, func(t *testing.T) {
			out, code := runKamaji(t, nil, append([]string{"plugin", "install"}, tc.args...)...)
			if code != 1 || !strings.Contains(out, tc.want) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Errorf("exit %d, output %q; want one line with %q", code, out, tc.want)
			}
		})
	}
}
