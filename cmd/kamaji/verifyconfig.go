package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// The `kamaji plugin verify` config file describes the datastore the plugin is verified
// against. Its keys mirror a DataStore (spec.driver, spec.endpoints, the TLS and basic-auth
// Secrets, resolved) flattened into one file:
//
//	name: verify                 # optional, the DataStore name passed to the plugin
//	driver: etcd                 # required, a driver the plugin serves
//	endpoints: ["127.0.0.1:2379"] # required
//	caCert: |                    # PEM inline ...
//	  -----BEGIN CERTIFICATE-----
//	caKeyFile: ca.key            # ... or read from a file with the ...File variant
//	clientCertFile: root.crt
//	clientKeyFile: root.key
//	username: root               # basic auth, when the driver uses it
//	passwordFile: password.txt   # or password: inline
//	parameters: {sslmode: require}
//
// Each of caCert, caKey, clientCert, clientKey and password is given inline or through its
// ...File variant, not both. A relative ...File path is relative to the config file's folder.
// A password file's trailing newlines are dropped. Unknown keys are an error.

// verifyFileKeys are the accepted keys, in the order the help lists them.
var verifyFileKeys = []string{
	"name", "driver", "endpoints",
	"caCert", "caCertFile", "caKey", "caKeyFile",
	"clientCert", "clientCertFile", "clientKey", "clientKeyFile",
	"username", "password", "passwordFile", "parameters",
}

// loadVerifyConfig reads and checks the config file; every error names the key.
func loadVerifyConfig(path string) (datastore.Config, error) {
	cfg, err := parseVerifyConfig(path)
	if err != nil {
		return datastore.Config{}, fmt.Errorf("config file %s: %v", path, err)
	}
	return cfg, nil
}

func parseVerifyConfig(path string) (datastore.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return datastore.Config{}, pe.Err
		}
		return datastore.Config{}, err
	}
	var top map[string]json.RawMessage
	if err := yaml.Unmarshal(data, &top); err != nil {
		return datastore.Config{}, fmt.Errorf("not a YAML mapping: %s", strings.Join(strings.Fields(err.Error()), " "))
	}
	if len(top) == 0 {
		return datastore.Config{}, errors.New("empty: want at least driver and endpoints")
	}
	var unknown []string
	for k := range top {
		if !slices.Contains(verifyFileKeys, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return datastore.Config{}, fmt.Errorf("unknown key %q (known keys: %s)", unknown[0], strings.Join(verifyFileKeys, ", "))
	}

	dir := filepath.Dir(path)
	cfg := datastore.Config{Name: "plugin-verify"}
	str := func(key string, dst *string) error {
		raw, ok := top[key]
		if !ok {
			return nil
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("%s: want a string", key)
		}
		return nil
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"name", &cfg.Name}, {"driver", &cfg.Driver}, {"username", &cfg.Username}} {
		if err := str(f.key, f.dst); err != nil {
			return cfg, err
		}
	}
	if cfg.Driver == "" {
		return cfg, errors.New("driver: required (the DataStore driver the plugin serves, e.g. etcd)")
	}
	if cfg.Name == "" {
		return cfg, errors.New("name: must not be empty")
	}

	if raw, ok := top["endpoints"]; ok {
		if err := json.Unmarshal(raw, &cfg.Endpoints); err != nil {
			return cfg, errors.New("endpoints: want a list of strings")
		}
	}
	if len(cfg.Endpoints) == 0 {
		return cfg, errors.New("endpoints: required (host:port of the datastore)")
	}
	for i, ep := range cfg.Endpoints {
		if strings.TrimSpace(ep) == "" {
			return cfg, fmt.Errorf("endpoints[%d]: empty", i)
		}
	}

	for _, f := range []struct {
		key string
		dst *[]byte
	}{{"caCert", &cfg.CACert}, {"caKey", &cfg.CAKey}, {"clientCert", &cfg.ClientCert}, {"clientKey", &cfg.ClientKey}} {
		key := f.key
		v, err := inlineOrFile(top, key, dir, str)
		if err != nil {
			return cfg, err
		}
		if v == nil {
			continue
		}
		if block, _ := pem.Decode(v); block == nil {
			if _, inline := top[key]; inline {
				return cfg, fmt.Errorf("%s: not PEM (an inline value is the PEM text; use %sFile for a path)", key, key)
			}
			return cfg, fmt.Errorf("%sFile: the file holds no PEM block", key)
		}
		*f.dst = v
	}
	pw, err := inlineOrFile(top, "password", dir, str)
	if err != nil {
		return cfg, err
	}
	if _, fromFile := top["passwordFile"]; fromFile {
		pw = bytes.TrimRight(pw, "\r\n")
	}
	cfg.Password = string(pw)

	if raw, ok := top["parameters"]; ok {
		params, err := parameters(raw)
		if err != nil {
			return cfg, err
		}
		cfg.Parameters = params
	}
	return cfg, nil
}

// inlineOrFile returns the value of key, or the content of the file named by keyFile, or nil
// when neither is set.
func inlineOrFile(top map[string]json.RawMessage, key, dir string, str func(string, *string) error) ([]byte, error) {
	fileKey := key + "File"
	_, inline := top[key]
	_, file := top[fileKey]
	switch {
	case inline && file:
		return nil, fmt.Errorf("%s and %s are both set: use one", key, fileKey)
	case inline:
		var v string
		if err := str(key, &v); err != nil {
			return nil, err
		}
		if v == "" {
			return nil, fmt.Errorf("%s: empty", key)
		}
		return []byte(v), nil
	case file:
		var p string
		if err := str(fileKey, &p); err != nil {
			return nil, err
		}
		if p == "" {
			return nil, fmt.Errorf("%s: empty path", fileKey)
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", fileKey, err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return nil, fmt.Errorf("%s: %s is empty", fileKey, p)
		}
		return b, nil
	}
	return nil, nil
}

// parameters accepts a mapping of scalars: strings as they are, numbers and booleans as
// written (port: 5432 is "5432").
func parameters(raw json.RawMessage) (map[string]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errors.New("parameters: want a mapping of names to values")
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		v = bytes.TrimSpace(v)
		switch {
		case len(v) > 0 && v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("parameters.%s: %v", k, err)
			}
			out[k] = s
		case len(v) == 0, v[0] == '{', v[0] == '[', string(v) == "null":
			return nil, fmt.Errorf("parameters.%s: want a string, number or boolean", k)
		default:
			out[k] = string(v)
		}
	}
	return out, nil
}
