package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// newPluginInstallCommand is what the chart's init containers run: plugin images are static,
// with no shell and no cp, so the kamaji binary (first copied out of the core image by itself)
// copies each plugin binary out of its image into the volume the manager starts it from.
func newPluginInstallCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "install SRC DIR",
		Short: "Copy a plugin binary into DIR, atomically, with mode 0555",
		Long: `Copy the file SRC to DIR/<base name of SRC> (DIR is created if missing): written to a
temporary file in DIR, then renamed over the target, so a reader never sees a partial binary;
mode 0555. Prints the target and its sha256, the value kamaji.yaml pins the plugin with.`,
		Example: `  kamaji plugin install /usr/local/bin/kamaji-datastore-etcd /opt/kamaji/plugins/datastore-etcd`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, sum, err := installFile(args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "installed %s (sha256 %s)\n", target, sum)
			return nil
		},
	}
}

// installFile copies src into dir atomically and returns the target path and its sha256.
func installFile(src, dir string) (string, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", "", fmt.Errorf("plugin install: source %s: %v", src, pathErr(err))
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return "", "", fmt.Errorf("plugin install: source %s: %v", src, pathErr(err))
	}
	if !st.Mode().IsRegular() {
		return "", "", fmt.Errorf("plugin install: source %s: not a regular file", src)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("plugin install: directory %s: %v", dir, pathErr(err))
	}
	target := filepath.Join(dir, filepath.Base(src))
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(src)+".*")
	if err != nil {
		return "", "", fmt.Errorf("plugin install: directory %s: %v", dir, pathErr(err))
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), in); err != nil {
		tmp.Close()
		return "", "", fmt.Errorf("plugin install: copying %s: %v", src, err)
	}
	if err := tmp.Chmod(0o555); err != nil {
		tmp.Close()
		return "", "", fmt.Errorf("plugin install: %v", err)
	}
	// On disk before the rename, so a crash never leaves a truncated binary under the name.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", "", fmt.Errorf("plugin install: %v", err)
	}
	if err := tmp.Close(); err != nil {
		return "", "", fmt.Errorf("plugin install: %v", err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return "", "", fmt.Errorf("plugin install: %v", err)
	}
	return target, hex.EncodeToString(h.Sum(nil)), nil
}

func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
