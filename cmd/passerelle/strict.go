package main

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The configuration file is checked against fileConfig before anything
// reads it: viper ignores keys it does not know and reads a bare number as
// a duration in nanoseconds, so a typo such as client_auht: require would
// otherwise start a listener with no client authentication at all. Every
// key of the file must be one of fileConfig's (with the type it has there),
// and every PASSERELLE_* environment variable must name one.

// fileConfig lists every key a configuration file may hold, for all
// commands; the types are those of the structs each command decodes. serve's
// own keys are its serveConfig, squashed in as viper reads them.
type fileConfig struct {
	serveConfig `mapstructure:",squash"`
	Log         struct {
		Level  string `mapstructure:"level"`
		Format string `mapstructure:"format"`
	} `mapstructure:"log"`
	Serve struct {
		Assets        string `mapstructure:"assets"`
		ChatAddress   string `mapstructure:"chat_address"`
		AssetsAddress string `mapstructure:"assets_address"`
		PlainAddress  string `mapstructure:"plain_address"`
		EchoAddress   string `mapstructure:"echo_address"`
	} `mapstructure:"serve"`
	Cert struct {
		Lifetime  string `mapstructure:"lifetime"`
		KeyType   string `mapstructure:"key_type"`
		P12Format string `mapstructure:"p12_format"`
	} `mapstructure:"cert"`
	Check struct {
		Revocation string        `mapstructure:"revocation"`
		Timeout    time.Duration `mapstructure:"timeout"`
	} `mapstructure:"check"`
	Testbed struct {
		Address  string `mapstructure:"address"`
		BasePort int    `mapstructure:"base_port"`
		CAOut    string `mapstructure:"ca_out"`
		Manifest string `mapstructure:"manifest"`
		KeyType  string `mapstructure:"key_type"`
	} `mapstructure:"testbed"`
}

// ConfigError is a configuration file's or the environment's mistakes, each
// naming its key; the program refuses to start on any of them.
type ConfigError struct {
	Source   string // the file, or "environment"
	Problems []string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("configuration %s:\n  %s", e.Source, strings.Join(e.Problems, "\n  "))
}

// checkConfigFile reads the YAML file at path and reports every key that
// fileConfig does not have, and every value of the wrong type.
func checkConfigFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config %s: %w", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &ConfigError{Source: path, Problems: []string{"not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var problems []string
	if len(doc.Content) > 0 {
		checkNode(doc.Content[0], reflect.TypeFor[fileConfig](), "", &problems)
	}
	if len(problems) > 0 {
		return &ConfigError{Source: path, Problems: problems}
	}
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

// checkNode compares one YAML node with the Go type it will be decoded into.
func checkNode(n *yaml.Node, t reflect.Type, path string, problems *[]string) {
	say := func(format string, args ...any) {
		*problems = append(*problems, fmt.Sprintf("line %d: %s: ", n.Line, displayPath(path))+fmt.Sprintf(format, args...))
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value keeps the default
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			say("want a duration such as 10s or 500ms")
			return
		}
		if n.Tag == "!!int" || n.Tag == "!!float" {
			say("%s has no unit: write a duration such as %ss or %sms", n.Value, n.Value, n.Value)
			return
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			say("%q is not a duration: write one such as 10s, 1m30s or 500ms", n.Value)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			say("want a mapping of keys (%s)", strings.Join(knownKeys(t), ", "))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fieldByKey(t, k.Value)
			sub := joinPath(path, k.Value)
			if !ok {
				msg := fmt.Sprintf("line %d: %s: unknown key", k.Line, displayPath(sub))
				if near := nearest(k.Value, knownKeys(t)); near != "" {
					msg += "; did you mean " + near + "?"
				} else {
					msg += "; known keys here: " + strings.Join(knownKeys(t), ", ")
				}
				*problems = append(*problems, msg)
				continue
			}
			checkNode(v, f.Type, sub, problems)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if t.Elem().Kind() == reflect.Struct {
				say("want a list of entries, each a mapping")
			} else {
				say("want a list, such as [a, b]")
			}
			return
		}
		for i, item := range n.Content {
			checkNode(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), problems)
		}
	case n.Kind != yaml.ScalarNode:
		say("want a single value, not a %s", kindName(n.Kind))
	case t.Kind() == reflect.Bool:
		if n.Tag != "!!bool" {
			say("%q: want true or false", n.Value)
		}
	case t.Kind() == reflect.Int:
		if n.Tag != "!!int" {
			say("%q: want a whole number", n.Value)
		}
	case t.Kind() == reflect.Float64:
		if n.Tag != "!!int" && n.Tag != "!!float" {
			say("%q: want a number", n.Value)
		}
	case t.Kind() == reflect.String:
		// Any scalar reads as text (a port written as a number, say).
	}
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func displayPath(path string) string {
	if path == "" {
		return "the file"
	}
	return path
}

// fields lists the keyed fields of struct t, those of a squashed struct
// (`mapstructure:",squash"`) as its own.
func fields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for f := range t.Fields() {
		if squashed(f) {
			out = append(out, fields(f.Type)...)
		} else if tagKey(f) != "" {
			out = append(out, f)
		}
	}
	return out
}

func squashed(f reflect.StructField) bool {
	_, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	return f.Type.Kind() == reflect.Struct && opts == "squash"
}

// fieldByKey finds the field of struct t whose mapstructure key is key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for _, f := range fields(t) {
		if tagKey(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// knownKeys lists the keys of struct t, sorted.
func knownKeys(t reflect.Type) []string {
	var keys []string
	for _, f := range fields(t) {
		keys = append(keys, tagKey(f))
	}
	sort.Strings(keys)
	return keys
}

func tagKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	return k
}

// nearest is the known key closest to key by edit distance, if it is close
// enough to be a typo (at most a third of the key's length, and at least
// one edit allowed).
func nearest(key string, known []string) string {
	best, bestD := "", len(key)/3+2 // the farthest a typo may be, plus one
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, with a swap of
// two neighbours counting as one edit (Damerau's transposition).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// envPrefix starts every environment variable passerelle reads.
const envPrefix = "PASSERELLE_"

// checkEnvironment reports every PASSERELLE_* variable in env that names no
// key: PASSERELLE_CHAT_MAX_MESAGE would otherwise be ignored without a word.
// Lists (listeners) cannot be set from the environment.
func checkEnvironment(env []string) error {
	known := envKeys(reflect.TypeFor[fileConfig](), "")
	var problems []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) {
			continue
		}
		key := strings.ToLower(strings.TrimPrefix(name, envPrefix))
		// The PKCS#12 password is a secret that has no place in a file.
		if slices.Contains(known, key) || name == p12PasswordEnv {
			continue
		}
		msg := name + ": no such setting"
		if near := nearest(key, known); near != "" {
			msg += "; did you mean " + envPrefix + strings.ToUpper(near) + "?"
		}
		problems = append(problems, msg)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return &ConfigError{Source: "environment", Problems: problems}
	}
	return nil
}

// envKeys lists the leaf keys of t joined with underscores, as viper maps
// them to environment variables.
func envKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for _, f := range fields(t) {
		k := tagKey(f)
		full := k
		if prefix != "" {
			full = prefix + "_" + k
		}
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != durationType:
			keys = append(keys, envKeys(f.Type, full)...)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			// not settable from the environment
		default:
			keys = append(keys, full)
		}
	}
	return keys
}
