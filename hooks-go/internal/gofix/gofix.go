// Package gofix finds the edits that make a hook file, written as go-deployd or the seed
// documentation write them, build as Go: the imports it uses without importing them (found by
// goimports, golang.org/x/tools/imports), and a type that shares its name with a variable (the
// seed's `type EventHandler struct{}` … `var EventHandler = &EventHandler{}`), renamed in its type
// positions to a name of the same length. Edits never add or remove a line, and renames keep
// every column, so compiler positions stay the user's.
package gofix

import (
	"go/ast"
	"go/parser"
	"go/token"
	"sort"
	"strconv"
	"unicode"
	"unicode/utf8"

	"golang.org/x/tools/imports"
)

// Import is an import the file needs.
type Import struct {
	Name string `json:"name,omitempty"`
	Path string `json:"path"`
}

// Rename replaces Length bytes at Offset with Text (always of the same length).
type Rename struct {
	Offset int    `json:"offset"`
	Length int    `json:"length"`
	Text   string `json:"text"`
	From   string `json:"from"`
}

// Result is what Fix found for one file.
type Result struct {
	File    string   `json:"file"`
	Imports []Import `json:"imports"`
	Renames []Rename `json:"renames"`
	// Declares lists the file's top-level names (so generated code can avoid them).
	Declares []string `json:"declares"`
	// Error is set when the file does not parse: the compiler reports it at the user's position.
	Error string `json:"error,omitempty"`
}

// Fix analyses src (the file's text, with a package clause). filename locates the file's package
// and module, whose sibling files goimports reads.
func Fix(filename string, src []byte) Result {
	res := Result{File: filename, Imports: []Import{}, Renames: []Rename{}, Declares: []string{}}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filename, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	types, values := topLevelNames(f)
	for name := range types {
		res.Declares = append(res.Declares, name)
	}
	for name := range values {
		if !types[name] {
			res.Declares = append(res.Declares, name)
		}
	}
	sort.Strings(res.Declares)

	used := identifiers(f)
	fixed := append([]byte(nil), src...)
	for name := range types {
		if !values[name] {
			continue
		}
		to := sameLengthName(name, used)
		if to == "" {
			continue
		}
		used[to] = true
		for _, id := range typePositions(f, name) {
			off := fset.Position(id.Pos()).Offset
			res.Renames = append(res.Renames, Rename{Offset: off, Length: len(name), Text: to, From: name})
			copy(fixed[off:], to)
		}
	}
	sort.Slice(res.Renames, func(i, j int) bool { return res.Renames[i].Offset < res.Renames[j].Offset })

	out, err := imports.Process(filename, fixed, &imports.Options{Comments: true, TabIndent: true, TabWidth: 8})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	after, err := parser.ParseFile(token.NewFileSet(), filename, out, parser.ImportsOnly)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	had := map[string]bool{}
	for _, spec := range f.Imports {
		had[importKey(spec)] = true
	}
	for _, spec := range after.Imports {
		if had[importKey(spec)] {
			continue
		}
		p, _ := strconv.Unquote(spec.Path.Value)
		imp := Import{Path: p}
		if spec.Name != nil {
			imp.Name = spec.Name.Name
		}
		res.Imports = append(res.Imports, imp)
	}
	return res
}

func importKey(spec *ast.ImportSpec) string {
	name := ""
	if spec.Name != nil {
		name = spec.Name.Name
	}
	return name + " " + spec.Path.Value
}

// topLevelNames returns the file's top-level type names and value (var, const, func) names.
func topLevelNames(f *ast.File) (types, values map[string]bool) {
	types, values = map[string]bool{}, map[string]bool{}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					types[s.Name.Name] = true
				case *ast.ValueSpec:
					for _, n := range s.Names {
						values[n.Name] = true
					}
				}
			}
		case *ast.FuncDecl:
			if d.Recv == nil {
				values[d.Name.Name] = true
			}
		}
	}
	return types, values
}

func identifiers(f *ast.File) map[string]bool {
	out := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok {
			out[id.Name] = true
		}
		return true
	})
	return out
}

// sameLengthName is a name of name's length used nowhere in the file: the first letter's case
// flipped (EventHandler → eventHandler) when free, else with a letter or _ in front of the rest.
func sameLengthName(name string, used map[string]bool) string {
	r, size := utf8.DecodeRuneInString(name)
	rest := name[size:]
	var candidates []string
	if unicode.IsUpper(r) {
		candidates = append(candidates, string(unicode.ToLower(r))+rest)
	} else {
		candidates = append(candidates, string(unicode.ToUpper(r))+rest)
	}
	if size == 1 {
		candidates = append(candidates, "_"+rest)
		for c := 'a'; c <= 'z'; c++ {
			candidates = append(candidates, string(c)+rest)
		}
	}
	for _, c := range candidates {
		if c != name && !used[c] && token.IsIdentifier(c) {
			return c
		}
	}
	return ""
}

// typePositions finds the identifiers named name that stand for a type: the type declaration,
// receivers, parameter/result/field types, composite literal types, type assertions, var types
// and the argument of new/make.
func typePositions(f *ast.File, name string) []*ast.Ident {
	seen := map[*ast.Ident]bool{}
	var out []*ast.Ident
	markType := func(expr ast.Node) {
		if expr == nil {
			return
		}
		ast.Inspect(expr, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && id.Name == name && !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
			// A type's own expressions (array lengths, …) are values: stop at them.
			switch n.(type) {
			case *ast.BasicLit, *ast.CallExpr, *ast.BinaryExpr:
				return false
			}
			return true
		})
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.TypeSpec:
			markType(x.Name)
			markType(x.Type)
		case *ast.Field:
			markType(x.Type)
		case *ast.CompositeLit:
			if x.Type != nil {
				markType(x.Type)
			}
		case *ast.TypeAssertExpr:
			if x.Type != nil {
				markType(x.Type)
			}
		case *ast.ValueSpec:
			if x.Type != nil {
				markType(x.Type)
			}
		case *ast.CallExpr:
			if id, ok := x.Fun.(*ast.Ident); ok && (id.Name == "new" || id.Name == "make") && len(x.Args) > 0 {
				markType(x.Args[0])
			}
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Pos() < out[j].Pos() })
	return out
}
