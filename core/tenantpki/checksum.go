package tenantpki

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"slices"
)

// Checksum is a sha256 over the given Secret datas, keys in sorted order. It goes into the pod
// template annotation (so a new certificate rolls the control plane) and the status checksums.
// Keys and values are length-prefixed and each data is delimited, so moving bytes between a
// key and its value, or between datas, changes the sum.
func Checksum(datas ...map[string][]byte) string {
	h := sha256.New()
	for _, data := range datas {
		writeLen(h, len(data))
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			writeLen(h, len(k))
			h.Write([]byte(k))
			writeLen(h, len(data[k]))
			h.Write(data[k])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeLen(h hash.Hash, n int) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
}
