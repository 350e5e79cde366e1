package webhooks

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Identifier length limits that hold for every built-in driver: PostgreSQL identifiers are at
// most 63 bytes, MySQL user names at most 32 characters.
const (
	maxSchemaLen   = 63
	maxUsernameLen = 32
	// hashLen hex digits: 64 bits, so a million tenants collide with odds of about 3e-8.
	hashLen = 16
)

// SliceNames derives the schema and user of a new TCP's datastore slice. They are portable
// (lowercase letters, digits and underscores, starting with a letter, within every built-in
// driver's limits), readable ("t_<namespace>_<name>_..."), and unique by construction: the
// suffix hashes the namespace, the name and a random nonce drawn at creation. The nonce matters
// twice: the defaulting webhook runs before the apiserver assigns a generateName'd TCP its name,
// so every TCP of a generateName would otherwise get the same names; and a TCP created again
// under the name of one whose slice was abandoned must not inherit that slice.
// name may be empty (generateName): the readable part then holds generateName.
func SliceNames(namespace, name, generateName string) (schema, user string) {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	return sliceNames(namespace, name, generateName, nonce)
}

func sliceNames(namespace, name, generateName string, nonce []byte) (schema, user string) {
	h := sha256.New()
	h.Write([]byte(namespace + "/" + name + "/" + generateName + "/"))
	h.Write(nonce)
	hash := hex.EncodeToString(h.Sum(nil))[:hashLen]
	readable := name
	if readable == "" {
		readable = strings.TrimRight(generateName, "-")
	}
	base := "t_" + sanitize(namespace) + "_" + sanitize(readable)
	return withHash(base, hash, maxSchemaLen), withHash(base, hash, maxUsernameLen)
}

// withHash truncates the readable part so that it, "_" and the hash fit the limit.
func withHash(readable, hash string, limit int) string {
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
