package webhooks

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Identifier length limits that hold for every built-in driver: PostgreSQL identifiers are at
// most 63 bytes, MySQL user names at most 32 characters.
const (
	maxSchemaLen   = 63
	maxUsernameLen = 32
)

// DataStoreName derives a schema or user name for a TCP that is unique per namespace/name and
// valid for every driver (etcd prefix, MySQL/PostgreSQL identifier, NATS bucket): lowercase
// letters, digits and underscores, starting with a letter. A plain namespace_name join is not
// unique ("ns-a"/"b-c" and "ns-a-b"/"c" both give ns_a_b_c), so a hash of the exact pair is
// appended; the readable part is truncated to fit the limit.
func DataStoreName(namespace, name string, limit int) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	hash := hex.EncodeToString(sum[:])[:8]
	readable := "t_" + sanitize(namespace) + "_" + sanitize(name)
	if max := limit - len(hash) - 1; len(readable) > max {
		readable = strings.TrimRight(readable[:max], "_")
	}
	return readable + "_" + hash
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
