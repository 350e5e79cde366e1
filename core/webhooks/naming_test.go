package webhooks

import (
	"regexp"
	"strings"
	"testing"
)

func TestDataStoreNameIsUniqueAndPortable(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	a := DataStoreName("ns-a", "b-c", maxSchemaLen)
	b := DataStoreName("ns-a-b", "c", maxSchemaLen)
	if a == b {
		t.Fatalf("ns-a/b-c and ns-a-b/c collide: %s", a)
	}
	long := strings.Repeat("n", 63)
	for _, tc := range []struct{ ns, name string }{{"default", "tenant-00"}, {long, long}, {"0ns", "x"}} {
		for _, limit := range []int{maxSchemaLen, maxUsernameLen} {
			got := DataStoreName(tc.ns, tc.name, limit)
			if len(got) > limit || !valid.MatchString(got) {
				t.Errorf("DataStoreName(%q,%q,%d) = %q: not a portable identifier", tc.ns, tc.name, limit, got)
			}
			if again := DataStoreName(tc.ns, tc.name, limit); again != got {
				t.Errorf("not deterministic: %q then %q", got, again)
			}
		}
	}
	if x, y := DataStoreName(long, long+"a", maxUsernameLen), DataStoreName(long, long+"b", maxUsernameLen); x == y {
		t.Errorf("truncated names collide: %s", x)
	}
}
