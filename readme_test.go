package scaleout_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReadmeTour checks that every snippet of README.md's package
// sections is, word for word, the body of the Example function its marker
// names: the examples compile and run with go test, so the README cannot
// rot.
func TestReadmeTour(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	marker := regexp.MustCompile("<!-- tour: (\\S+) (\\w+) -->\n```go\n((?s).*?)\n```\n")
	found := marker.FindAllStringSubmatch(string(readme), -1)
	if len(found) < 7 {
		t.Fatalf("README.md has %d tour snippets, want one per package (7)", len(found))
	}
	for _, m := range found {
		file, fn, snippet := m[1], m[2], m[3]
		src, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if got := exampleBody(string(src), fn); got != snippet {
			t.Errorf("README.md's snippet of %s %s differs from the function's body:\n--- README\n%s\n--- %s\n%s", file, fn, snippet, file, got)
		}
		if outside := usedFromOutside(t, file, src, fn); len(outside) > 0 {
			t.Errorf("README.md's snippet of %s %s uses %v, declared outside it in %s: a reader who pastes it has no such thing",
				file, fn, outside, file)
		}
	}
}

// exampleBody returns the body of func fn() in src, one tab dedented.
func exampleBody(src, fn string) string {
	head := "\nfunc " + fn + "() {\n"
	i := strings.Index(src, head)
	if i < 0 {
		return ""
	}
	rest := src[i+len(head):]
	end := strings.Index(rest, "\n}\n")
	if end < 0 {
		return ""
	}
	lines := strings.Split(rest[:end], "\n")
	for k, l := range lines {
		lines[k] = strings.TrimPrefix(l, "\t")
	}
	return strings.Join(lines, "\n")
}

// usedFromOutside returns the names that the body of func fn in src
// uses and that src declares at package level: a snippet shows only the
// body, so it must declare (or import) everything it uses.
func usedFromOutside(t *testing.T, file string, src []byte, fn string) []string {
	f, err := parser.ParseFile(token.NewFileSet(), file, src, 0)
	if err != nil {
		t.Errorf("%s: %v", file, err)
		return nil
	}
	var body *ast.BlockStmt
	top := map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil && d.Name.Name == fn {
				body = d.Body
			} else if d.Recv == nil {
				top[d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch spec := spec.(type) {
				case *ast.TypeSpec:
					top[spec.Name.Name] = true
				case *ast.ValueSpec:
					for _, n := range spec.Names {
						top[n.Name] = true
					}
				}
			}
		}
	}
	if body == nil {
		return nil
	}
	var used []string
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			ast.Inspect(n.X, func(n ast.Node) bool { return inspectIdent(n, top, &used) })
			return false // n.Sel is a field or a package member
		case *ast.KeyValueExpr:
			if _, ok := n.Key.(*ast.Ident); ok {
				ast.Inspect(n.Value, func(n ast.Node) bool { return inspectIdent(n, top, &used) })
				return false // a field name in a composite literal
			}
		}
		return inspectIdent(n, top, &used)
	})
	// Names the body itself declares shadow the package's.
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.TypeSpec:
			used = slices.DeleteFunc(used, func(s string) bool { return s == n.Name.Name })
		case *ast.AssignStmt:
			if n.Tok == token.DEFINE {
				for _, l := range n.Lhs {
					if id, ok := l.(*ast.Ident); ok {
						used = slices.DeleteFunc(used, func(s string) bool { return s == id.Name })
					}
				}
			}
		}
		return true
	})
	slices.Sort(used)
	return slices.Compact(used)
}

func inspectIdent(n ast.Node, top map[string]bool, used *[]string) bool {
	if id, ok := n.(*ast.Ident); ok && top[id.Name] {
		*used = append(*used, id.Name)
	}
	return true
}
