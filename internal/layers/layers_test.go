// Package layers holds no code: its test checks that every package of
// passerelle imports only the layers below its own, as
// docs/architecture.md draws them.
package layers

import (
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/passerelle/passerelle"

// below lists, for each layer, the layers its packages may import (besides
// their own). It is the table of docs/architecture.md; change both together.
var below = map[string][]string{
	"internal":    {},
	"testhelpers": {"internal"},
	"certs":       {"internal"},
	"secure":      {"certs", "internal"},
	"protocol":    {"internal"},
	"hub":         {"protocol", "internal"},
	"web":         {"hub", "protocol", "internal"},
	"cluster":     {"hub", "certs", "internal"},
	"metrics":     {"cluster", "hub", "protocol", "secure", "certs", "internal"},
	"testbed":     {"web", "protocol", "secure", "certs", "internal"},
	"bench":       {"protocol", "certs", "internal"},
	"serve":       {"metrics", "cluster", "web", "hub", "protocol", "secure", "certs", "internal"},
	"cmd":         {"serve", "testbed", "metrics", "cluster", "web", "hub", "protocol", "secure", "certs", "internal"},
}

// layer is the layer of a package of the module, by its path inside it.
func layer(rel string) string {
	first, _, _ := strings.Cut(rel, "/")
	switch {
	case rel == "internal/serve":
		return "serve" // the composition root of passerelle serve, under cmd
	case first == "internal" && strings.HasPrefix(path.Base(rel), "test"):
		return "testhelpers"
	case first == "internal":
		return "internal"
	}
	return first
}

// TestLayers reads every package's imports (tests' own imports aside) with
// go list and checks each import of the module against the table.
func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		fields := strings.Fields(line)
		from := strings.TrimPrefix(fields[0], module+"/")
		if fields[0] == module || from == "protocol" { // protocol itself is only its doc
			continue
		}
		lf := layer(from)
		allowed, known := below[lf]
		if !known {
			t.Errorf("%s: layer %q is not in the table of docs/architecture.md", from, lf)
			continue
		}
		seen[lf] = true
		for _, imp := range fields[1:] {
			to, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			if lt := layer(to); lt != lf && !slices.Contains(allowed, lt) {
				t.Errorf("%s (layer %s) imports %s (layer %s): not a layer below it", from, lf, to, lt)
			}
		}
	}
	for l := range below {
		if !seen[l] {
			t.Errorf("layer %q of the table has no package: the table is out of date", l)
		}
	}
}
