package tenantpki

import (
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	for name, o := range map[string]Options{
		"deadline beyond leaf validity": {RenewBefore: 400 * 24 * time.Hour},
		"deadline beyond CA validity":   {CAValidity: time.Hour, CertValidity: time.Minute, RenewBefore: 2 * time.Hour},
		"negative":                      {RenewBefore: -time.Hour},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, _, err := EnsureCA(nil, o, clockAt(0)); err == nil {
			t.Errorf("%s: EnsureCA accepted it", name)
		}
	}
}

func TestNamesAndReasons(t *testing.T) {
	if got := SecretName("tenant", APIServer); got != "tenant-api-server-certificate" {
		t.Fatalf("SecretName = %q", got)
	}
	for _, k := range Kinds {
		if len(Keys(k)) == 0 {
			t.Errorf("no keys for %s", k)
		}
	}
	if Combine(Unchanged, Repaired, Expiring) != Expiring || Combine(Unchanged, Repaired) != Repaired || Combine() != Unchanged {
		t.Fatal("Combine precedence")
	}
}
