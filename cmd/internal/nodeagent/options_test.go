package nodeagent

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	testToken = "abcdef.0123456789abcdef"
	testHash  = "sha256:c8e8eaafb6df3d122574cd7f66c819f5502455a177e6fe22d40dae84a143d30c"
)

func TestParseJoinCommand(t *testing.T) {
	for _, line := range []string{
		"kubeadm join 10.0.0.1:6443 --token " + testToken + " --discovery-token-ca-cert-hash " + testHash,
		"  kubeadm join 10.0.0.1:6443 --token=" + testToken + " --discovery-token-ca-cert-hash=" + testHash + " \n",
		"kubeadm join 10.0.0.1:6443 --token " + testToken + " \\\n\t--discovery-token-ca-cert-hash " + testHash,
		"kubeadm join --token " + testToken + " --discovery-token-ca-cert-hash " + testHash + " 10.0.0.1:6443",
	} {
		j, err := ParseJoinCommand(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		want := JoinValues{Server: "10.0.0.1:6443", Token: testToken, CACertHashes: []string{testHash}}
		if !reflect.DeepEqual(j, want) {
			t.Errorf("%q: got %+v, want %+v", line, j, want)
		}
	}

	// Upper-case hex from hand-made pins compares like kubeadm's lower case.
	j, err := ParseJoinCommand("kubeadm join h:6443 --token " + testToken + " --discovery-token-ca-cert-hash sha256:C8E8EAAFB6DF3D122574CD7F66C819F5502455A177E6FE22D40DAE84A143D30C --discovery-token-ca-cert-hash " + testHash)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{testHash, testHash}; !reflect.DeepEqual(j.CACertHashes, want) {
		t.Errorf("hashes %v, want %v", j.CACertHashes, want)
	}
}

func TestParseJoinCommandErrors(t *testing.T) {
	for _, c := range []struct{ line, err string }{
		{"kubeadm join 10.0.0.1:6443 --discovery-token-ca-cert-hash " + testHash, "no --token"},
		{"kubeadm join 10.0.0.1:6443 --token " + testToken, "no --discovery-token-ca-cert-hash"},
		{"kubeadm join --token " + testToken + " --discovery-token-ca-cert-hash " + testHash, "no API server endpoint"},
		{"kubeadm join 10.0.0.1:6443 --token " + testToken + " --discovery-token-ca-cert-hash c8e8eaafb6df3d122574cd7f66c819f5502455a177e6fe22d40dae84a143d30c", `must start with "sha256:"`},
		{"kubeadm join 10.0.0.1:6443 --token " + testToken + " --discovery-token-ca-cert-hash sha256:c8e8", "64 hex digits"},
		{"kubeadm join 10.0.0.1:6443 --token " + testToken + " --discovery-token-ca-cert-hash sha256:zz" + testHash[9:], "64 hex digits"},
		{"kubeadm join 10.0.0.1:6443 --token abcdef --discovery-token-ca-cert-hash " + testHash, "not of the form"},
		{"kubeadm join 10.0.0.1:6443 --token " + testToken + " --discovery-token-ca-cert-hash " + testHash + " --control-plane", "unsupported flag --control-plane"},
		{"kubeadm join 10.0.0.1:6443 --token", "--token has no value"},
		{"kubeadm token create", `starting with "kubeadm join"`},
		{"", `starting with "kubeadm join"`},
	} {
		_, err := ParseJoinCommand(c.line)
		if err == nil {
			t.Errorf("%q: no error, want %q", c.line, c.err)
			continue
		}
		if !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %q, want one containing %q", c.line, err, c.err)
		}
	}
	// The token's secret never shows in an error.
	_, err := ParseJoinCommand("kubeadm join h:1 --token abcdef.0123456789ABCDEF --discovery-token-ca-cert-hash " + testHash)
	if err == nil || strings.Contains(err.Error(), "0123456789ABCDEF") {
		t.Errorf("error %v shows the secret or is missing", err)
	}
}

func validOptions() Options {
	return Options{
		Server: "10.0.0.1:6443", Token: testToken, CACertHashes: []string{testHash},
		NodeName: "node-1", NodeIP: "10.1.0.2", CertDir: "/tmp/x", Timeout: time.Minute,
	}
}

func TestOptionsComplete(t *testing.T) {
	o := validOptions()
	if err := o.Complete(); err != nil {
		t.Fatal(err)
	}
	if o.Server != "https://10.0.0.1:6443" || o.Listen != "10.1.0.2:10250" || o.parsedTokenID != "abcdef" ||
		o.parsedSecret != "0123456789abcdef" || o.PollInterval != time.Second || o.Out == nil {
		t.Errorf("completed %+v", o)
	}

	o = Options{JoinCommand: "kubeadm join 10.0.0.1:6443 --token " + testToken + " --discovery-token-ca-cert-hash " + testHash,
		NodeName: "node-1", NodeIP: "fd00::2", CertDir: "/tmp/x", Timeout: time.Minute}
	if err := o.Complete(); err != nil {
		t.Fatal(err)
	}
	if o.Server != "https://10.0.0.1:6443" || o.Token != testToken || o.Listen != "[fd00::2]:10250" {
		t.Errorf("from --join-command: %+v", o)
	}

	for _, c := range []struct {
		edit func(*Options)
		err  string
	}{
		{func(o *Options) { o.JoinCommand = "kubeadm join h:1" }, "--join-command replaces --server"},
		{func(o *Options) {
			o.Server, o.Token, o.CACertHashes, o.JoinCommand = "", "", nil, "kubeadm join h:1 --token x"
		}, "--join-command: token"},
		{func(o *Options) { o.Server = "" }, "--server is required"},
		{func(o *Options) { o.Server = "http://h:1" }, "--server: invalid endpoint"},
		{func(o *Options) { o.Token = "" }, "--token is required"},
		{func(o *Options) { o.CACertHashes = []string{"md5:00"} }, "--discovery-token-ca-cert-hash: "},
		{func(o *Options) { o.NodeName = "" }, "--node-name is required"},
		{func(o *Options) { o.NodeName = "Node_1" }, `--node-name "Node_1"`},
		{func(o *Options) { o.NodeIP = "node" }, `--node-ip: invalid address "node"`},
		{func(o *Options) { o.CertDir = "" }, "--cert-dir is required"},
		{func(o *Options) { o.Listen = "10.1.0.2" }, "--listen: "},
		{func(o *Options) { o.Timeout = 0 }, "--timeout must be positive"},
	} {
		o := validOptions()
		c.edit(&o)
		err := o.Complete()
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("error %v, want one containing %q", err, c.err)
		}
	}
}
