package webhooks

import (
	"encoding/binary"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var portable = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func checkPortable(t *testing.T, schema, user string) {
	t.Helper()
	if len(schema) > maxSchemaLen || !portable.MatchString(schema) {
		t.Errorf("schema %q: not a portable identifier of at most %d bytes", schema, maxSchemaLen)
	}
	if len(user) > maxUsernameLen || !portable.MatchString(user) {
		t.Errorf("user %q: not a portable identifier of at most %d bytes", user, maxUsernameLen)
	}
}

func TestSliceNamesArePortableAndReadable(t *testing.T) {
	long := strings.Repeat("n", 63)
	for _, tc := range []struct{ ns, name, gen string }{
		{"default", "tenant-00", ""}, {long, long, ""}, {"0ns", "x", ""}, {"default", "", "gen-"}, {long, "", long[:58] + "-"},
	} {
		schema, user := SliceNames(tc.ns, tc.name, tc.gen)
		checkPortable(t, schema, user)
		if len(schema) < hashLen+2 || len(user) < hashLen+2 {
			t.Errorf("%q / %q: shorter than the hash", schema, user)
		}
	}
	schema, user := SliceNames("default", "tenant-00", "")
	if !strings.HasPrefix(schema, "t_default_tenant_00_") || !strings.HasPrefix(user, "t_default_tenan") {
		t.Errorf("names do not tell the tenant: %q %q", schema, user)
	}
	schema, _ = SliceNames("default", "", "gen-")
	if !strings.HasPrefix(schema, "t_default_gen_") {
		t.Errorf("a generateName'd TCP's schema does not tell its prefix: %q", schema)
	}
}

// Two TCPs of one generateName are admitted before either has a name: they must still get
// distinct slices, and so must a TCP created again under an old name.
func TestSliceNamesDifferForTheSameNameOrGenerateName(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		for _, n := range [][2]string{{"", "gen-"}, {"tenant-00", ""}} {
			schema, user := SliceNames("default", n[0], n[1])
			if seen[schema] || seen["u:"+user] {
				t.Fatalf("collision after %d names: %s / %s", len(seen), schema, user)
			}
			seen[schema], seen["u:"+user] = true, true
		}
	}
}

// The property the issue asks for: a million (namespace, name) pairs, including pairs whose
// sanitized readable parts are equal and names long enough to be truncated, give a million
// distinct schemas and a million distinct users.
func TestSliceNamesMillionPairsNoCollision(t *testing.T) {
	const n = 1_000_000
	schemas := make(map[string]struct{}, n)
	users := make(map[string]struct{}, n)
	nonce := make([]byte, 8)
	long := strings.Repeat("x", 40)
	for i := range n {
		// Many pairs share their readable part ("ns-a"/"b" and "ns"/"a-b" sanitize alike;
		// long names truncate to the same prefix), so only the hash keeps them apart.
		ns, name := "ns-"+strconv.Itoa(i%1000), long+"-"+strconv.Itoa(i/1000)
		if i%2 == 1 {
			ns, name = "ns", strconv.Itoa(i%1000)+"-"+long+"-"+strconv.Itoa(i/1000)
		}
		binary.LittleEndian.PutUint64(nonce, uint64(i)*0x9e3779b97f4a7c15)
		schema, user := sliceNames(ns, name, "", nonce)
		if _, dup := schemas[schema]; dup {
			t.Fatalf("schema collision at pair %d: %s", i, schema)
		}
		if _, dup := users[user]; dup {
			t.Fatalf("user collision at pair %d: %s", i, user)
		}
		schemas[schema], users[user] = struct{}{}, struct{}{}
	}
}
