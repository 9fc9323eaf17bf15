package serve

import (
	"encoding"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// The configuration file is read here, and only here: the yaml.Node walk
// below checks every key against the schema (fileConfig in cmd/passerelle:
// serve's Config and the other commands' sections) and then hands the
// decoded tree to viper (MergeConfigMap), which keeps its precedence of
// flag over environment over file over default. The walk is the reader
// rather than a second parse beside viper's because only the node tree
// knows each key's line and whether a value was written as a number, a
// string or a list: viper ignores keys it does not know and reads a bare
// number as a duration in nanoseconds, so a typo such as client_auht:
// require would otherwise start a listener with no client authentication
// at all. Every PASSERELLE_* environment variable must name a key, and its
// value is checked against the key's type with the same words.

// ConfigError is a configuration file's or the environment's mistakes, each
// naming its key or variable; the program refuses to start on any of them.
type ConfigError struct {
	Source   string // the file, or "environment"
	Problems []string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("configuration %s:\n  %s", e.Source, strings.Join(e.Problems, "\n  "))
}

// EnvPrefix starts every environment variable passerelle reads.
const EnvPrefix = "PASSERELLE_"

// Settings says where ReadSettings finds the configuration of a command.
type Settings struct {
	// File is the --config file; empty: none.
	File string
	// Env is the process's environment (os.Environ()).
	Env []string
	// Schema is a struct type with every key a file or the environment may
	// set, for every command, tagged as viper decodes it (mapstructure).
	Schema reflect.Type
	// Secrets are PASSERELLE_* variables that are no key of the schema (a
	// password has no place in a file) and are read by their command.
	Secrets []string
}

// ReadSettings checks the environment and the configuration file against
// s.Schema and makes v read them (flags are bound to v by their command,
// and pflag has checked their values). Nothing is read into v unless both
// are clean.
func ReadSettings(v *viper.Viper, s Settings) error {
	v.SetEnvPrefix(strings.TrimSuffix(EnvPrefix, "_"))
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	if err := checkEnvironment(s.Env, s.Schema, s.Secrets); err != nil {
		return err
	}
	if s.File == "" {
		return nil
	}
	tree, err := readConfigFile(s.File, s.Schema)
	if err != nil {
		return err
	}
	return v.MergeConfigMap(tree)
}

// readConfigFile reads the YAML file at path, reports every key that schema
// does not have and every value of the wrong type, and returns the file's
// tree for viper.
func readConfigFile(path string, schema reflect.Type) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ConfigError{Source: path, Problems: []string{"not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if len(doc.Content) == 0 {
		return nil, nil // an empty file sets nothing
	}
	var problems []string
	checkNode(doc.Content[0], schema, "", &problems)
	if len(problems) > 0 {
		return nil, &ConfigError{Source: path, Problems: problems}
	}
	var tree map[string]any
	if err := doc.Content[0].Decode(&tree); err != nil {
		return nil, &ConfigError{Source: path, Problems: []string{err.Error()}}
	}
	return tree, nil
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
	case t == durationType || isText(t):
		if n.Kind != yaml.ScalarNode {
			say("want a single value, not a %s", kindName(n.Kind))
			return
		}
		if msg := scalarProblem(n, t); msg != "" {
			say("%s", msg)
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
	default:
		if msg := scalarProblem(n, t); msg != "" {
			say("%s", msg)
		}
	}
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// isText reports whether values of t read themselves from text
// (certs.TLSMode, secure.ClientAuth): the decoder hands them the scalar.
func isText(t reflect.Type) bool {
	return t.Kind() != reflect.Struct && reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// scalarProblem says what is wrong with scalar n as a value of type t, or
// "" if nothing. A file's scalar carries the tag YAML resolved (a quoted
// "10" is text); an environment variable's is resolved the same way from
// its text, so that both are told the same words.
func scalarProblem(n *yaml.Node, t reflect.Type) string {
	tag := n.ShortTag()
	switch {
	case t == durationType:
		if tag == "!!int" || tag == "!!float" {
			return fmt.Sprintf("%s has no unit: write a duration such as %ss or %sms", n.Value, n.Value, n.Value)
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			return fmt.Sprintf("%q is not a duration: write one such as 10s, 1m30s or 500ms", n.Value)
		}
	case isText(t):
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			return fmt.Sprintf("%q: %v", n.Value, err)
		}
	case t.Kind() == reflect.Bool:
		if tag != "!!bool" {
			return fmt.Sprintf("%q: want true or false", n.Value)
		}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64: // runtime.gc_floor is an int64
		if tag != "!!int" {
			return fmt.Sprintf("%q: want a whole number", n.Value)
		}
	case t.Kind() == reflect.Float64:
		if tag != "!!int" && tag != "!!float" {
			return fmt.Sprintf("%q: want a number", n.Value)
		}
	}
	// Any scalar reads as text (a port written as a number, say).
	return ""
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

// checkEnvironment reports every PASSERELLE_* variable in env that names no
// key of schema (PASSERELLE_CHAT_MAX_MESAGE would otherwise be ignored
// without a word), and every value that is not one of its key's type, in
// the file's words (PASSERELLE_CHECK_TIMEOUT=10 would otherwise be 10ns).
// Lists of entries (listeners) cannot be set from the environment; a list
// of values is its elements separated by commas.
func checkEnvironment(env []string, schema reflect.Type, secrets []string) error {
	types := map[string]reflect.Type{}
	envKeys(schema, "", types)
	known := slices.Sorted(maps.Keys(types))
	var problems []string
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || slices.Contains(secrets, name) {
			continue
		}
		key := strings.ToLower(strings.TrimPrefix(name, EnvPrefix))
		t, ok := types[key]
		if !ok {
			msg := name + ": no such setting"
			if near := nearest(key, known); near != "" {
				msg += "; did you mean " + EnvPrefix + strings.ToUpper(near) + "?"
			}
			problems = append(problems, msg)
			continue
		}
		if msg := envValueProblem(value, t); msg != "" {
			problems = append(problems, name+": "+msg)
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return &ConfigError{Source: "environment", Problems: problems}
	}
	return nil
}

// envValueProblem checks one variable's value against its key's type. An
// empty value is no value: viper takes the variable as unset.
func envValueProblem(value string, t reflect.Type) string {
	if value == "" {
		return ""
	}
	if t.Kind() == reflect.Slice {
		for elem := range strings.SplitSeq(value, ",") {
			if msg := envValueProblem(strings.TrimSpace(elem), t.Elem()); msg != "" {
				return msg
			}
		}
		return ""
	}
	return scalarProblem(&yaml.Node{Kind: yaml.ScalarNode, Value: value}, t)
}

// envKeys records the leaf keys of t joined with underscores, as viper maps
// them to environment variables, with their types.
func envKeys(t reflect.Type, prefix string, into map[string]reflect.Type) {
	for _, f := range fields(t) {
		full := tagKey(f)
		if prefix != "" {
			full = prefix + "_" + full
		}
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != durationType && !isText(f.Type):
			envKeys(f.Type, full, into)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			// not settable from the environment
		default:
			into[full] = f.Type
		}
	}
}
