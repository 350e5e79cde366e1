package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"sigs.k8s.io/yaml"

	"github.com/openhcp/kamaji/core/settings"
)

// envPrefix: KAMAJI_DATASTORE sets --datastore, KAMAJI_MAX_CONCURRENT_TCP_RECONCILES sets
// --max-concurrent-tcp-reconciles, and so on.
const envPrefix = "KAMAJI_"

// applyConfig fills every flag the command line left unset, from the environment and then from
// the config file (file < env < flags), parsing each value as the flag itself would, so a bad
// value fails with the key and the source named. It returns the plugin list of the file.
func applyConfig(fs *pflag.FlagSet, path string, pathExplicit bool) ([]settings.Plugin, error) {
	v := viper.New()
	if path != "" {
		if _, err := os.Stat(path); err == nil || pathExplicit {
			v.SetConfigFile(path)
			v.SetConfigType("yaml")
			if err := v.ReadInConfig(); err != nil {
				return nil, fmt.Errorf("config file %s: %v", path, oneLine(err))
			}
		} else {
			path = ""
		}
	}
	var unknown []string
	for _, key := range v.AllKeys() {
		top := strings.SplitN(key, ".", 2)[0]
		if top != "plugins" && fs.Lookup(top) == nil {
			unknown = append(unknown, top)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("config file %s: unknown key %q", path, unknown[0])
	}

	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "config" {
			return
		}
		env := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if val, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, val); e != nil {
				err = fmt.Errorf("environment %s: invalid value %q: %v", env, val, cause(e))
			}
			return
		}
		if v.IsSet(f.Name) {
			val := fmt.Sprint(v.Get(f.Name))
			if e := fs.Set(f.Name, val); e != nil {
				err = fmt.Errorf("config file %s: %s: invalid value %q: %v", path, f.Name, val, cause(e))
			}
		}
	})
	if err != nil {
		return nil, err
	}

	plugins, err := readPlugins(path)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %v", path, err)
	}
	return plugins, nil
}

// readPlugins decodes the plugins list strictly and case-preserving (viper lower-cases map
// keys, which would break environment variable names).
func readPlugins(path string) ([]settings.Plugin, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := yaml.Unmarshal(data, &top); err != nil {
		return nil, err
	}
	raw, ok := top["plugins"]
	if !ok {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var plugins []settings.Plugin
	if err := dec.Decode(&plugins); err != nil {
		return nil, fmt.Errorf("plugins: %v", err)
	}
	return plugins, nil
}

// cause strips pflag's own wording ("invalid argument ... for ... flag:"), which repeats the key.
func cause(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "flag: "); i >= 0 {
		return msg[i+len("flag: "):]
	}
	return msg
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
