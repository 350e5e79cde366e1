package controlplane

import (
	"slices"
	"strconv"
	"strings"
)

// MergeArgs merges "--name=value" and "--name" flags: an entry of extra replaces the base entry
// of the same name (as does a later entry within one list), and the result is sorted by flag
// name so that the same flags always produce the same container spec. Entries are trimmed and
// empty ones dropped. Callers rebuild base from scratch each time, so a flag dropped from extra
// is gone from the result rather than lingering from a previous merge.
//
// Each entry is one flag: "--name value" in a single string is not split.
func MergeArgs(base []string, extra []string) []string {
	byName := make(map[string]string, len(base)+len(extra))
	for _, list := range [][]string{base, extra} {
		for _, a := range list {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			byName[flagName(a)] = a
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, byName[n])
	}
	return out
}

// flagName is the name of "--name=value", "-name=value" or "--name", without dashes, so that
// "-v=2" and "--v=4" count as the same flag.
func flagName(arg string) string {
	name := strings.TrimLeft(arg, "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		name = name[:i]
	}
	return name
}

// argValue returns the value of the last flag called name in args.
func argValue(args []string, name string) (string, bool) {
	for _, a := range slices.Backward(args) {
		if flagName(a) != name {
			continue
		}
		_, v, ok := strings.Cut(a, "=")
		return v, ok
	}
	return "", false
}

// portArg is the port a component really listens on: the user may override it with an extra
// arg, and the probes and container port must follow.
func portArg(args []string, name string, def int32) int32 {
	v, ok := argValue(args, name)
	if !ok {
		return def
	}
	p, err := strconv.ParseInt(v, 10, 32)
	if err != nil || p < 1 || p > 65535 {
		return def
	}
	return int32(p)
}
