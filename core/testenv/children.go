package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Children are the pids of the live (not zombie) processes whose parent is ppid. A test that
// kills a plugin must pick it among its own process's children: go test runs packages side by
// side, and another package's plugin of the same name is not its to kill.
func Children(ppid int) []int {
	entries, _ := os.ReadDir("/proc")
	parent := strconv.Itoa(ppid)
	var out []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[0] == "Z" || f[1] != parent {
			continue
		}
		out = append(out, pid)
	}
	return out
}
