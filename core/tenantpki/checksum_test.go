package tenantpki

import "testing"

func TestChecksum(t *testing.T) {
	a := map[string][]byte{"a": []byte("1"), "b": []byte("2")}
	// Map iteration order must not matter: build the same content many times.
	for range 20 {
		if Checksum(a) != Checksum(map[string][]byte{"b": []byte("2"), "a": []byte("1")}) {
			t.Fatal("checksum depends on map order")
		}
	}
	distinct := map[string]string{
		"base":            Checksum(a),
		"value changed":   Checksum(map[string][]byte{"a": []byte("1"), "b": []byte("3")}),
		"key/value shift": Checksum(map[string][]byte{"a1": nil, "b": []byte("2")}),
		"split in two":    Checksum(map[string][]byte{"a": []byte("1")}, map[string][]byte{"b": []byte("2")}),
		"empty":           Checksum(),
		"one empty data":  Checksum(map[string][]byte{}),
	}
	seen := map[string]string{}
	for name, sum := range distinct {
		if other, dup := seen[sum]; dup {
			t.Errorf("%s and %s have the same checksum", name, other)
		}
		seen[sum] = name
	}
}
