package gofix

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The seed's aftercommit.go (hooks-go/examples/seed/testdata), with the package clause deployd-ts
// gives it: `time` is used but not imported, and EventHandler is both a type and a variable.
func TestSeedExample(t *testing.T) {
	src, err := os.ReadFile("../../examples/seed/testdata/aftercommit.go.txt")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "aftercommit.go")
	text := strings.Replace(string(src), "package main", "package hook_aftercommit", 1)
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	res := Fix(file, []byte(text))
	if res.Error != "" {
		t.Fatal(res.Error)
	}
	if !reflect.DeepEqual(res.Imports, []Import{{Path: "time"}}) {
		t.Errorf("imports = %+v, want time", res.Imports)
	}
	// The type's three places, not the variable's name.
	if len(res.Renames) != 3 {
		t.Fatalf("renames = %+v, want 3", res.Renames)
	}
	fixed := []byte(text)
	for _, r := range res.Renames {
		if r.Text != "eventHandler" || r.Length != len("EventHandler") || text[r.Offset:r.Offset+r.Length] != "EventHandler" {
			t.Errorf("rename %+v", r)
		}
		copy(fixed[r.Offset:], r.Text)
	}
	for _, want := range []string{"type eventHandler struct{}", "func (h *eventHandler) Run(", "var EventHandler = &eventHandler{}"} {
		if !strings.Contains(string(fixed), want) {
			t.Errorf("fixed text lacks %q", want)
		}
	}
	if strings.Count(string(fixed), "\n") != strings.Count(text, "\n") {
		t.Error("line count changed")
	}
}

func TestNothingToFix(t *testing.T) {
	src := "package p\n\nimport \"fmt\"\n\nfunc Run() string { return fmt.Sprint(1) }\n"
	res := Fix(filepath.Join(t.TempDir(), "p.go"), []byte(src))
	if res.Error != "" || len(res.Imports) != 0 || len(res.Renames) != 0 {
		t.Errorf("got %+v", res)
	}
	if !reflect.DeepEqual(res.Declares, []string{"Run"}) {
		t.Errorf("declares = %v", res.Declares)
	}
}

func TestSyntaxErrorIsLeftToTheCompiler(t *testing.T) {
	res := Fix(filepath.Join(t.TempDir(), "p.go"), []byte("package p\nfunc {"))
	if res.Error == "" {
		t.Error("no error for a file that does not parse")
	}
}
