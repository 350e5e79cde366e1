package local

import (
	"os"
	"path/filepath"
	"testing"
)

// procKB reads the asked "Name: N kB" lines in bytes and ignores the others.
func TestProcKB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	data := "Name:\tkube-apiserver\nVmRSS:\t  245000 kB\nRssAnon:\t  150000 kB\nRssFile:\t   95000 kB\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	kb, err := procKB(path, "VmRSS", "RssAnon")
	if err != nil {
		t.Fatal(err)
	}
	if kb["VmRSS"] != 245000*1024 || kb["RssAnon"] != 150000*1024 || len(kb) != 2 {
		t.Errorf("procKB = %v", kb)
	}
	if _, err := procKB(filepath.Join(t.TempDir(), "missing"), "VmRSS"); err == nil {
		t.Error("a missing file must be an error")
	}
}
