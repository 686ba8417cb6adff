package scaleout_test

import (
	"os"
	"regexp"
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
