package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestProxybenchBlock(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	block := proxybenchStart + "\n## Proxy\n\n| a |\n" + proxybenchEnd
	for _, tc := range []struct {
		name, file, want string
		err              bool
	}{
		{name: "block", file: "# old\n\n" + block + "\ntrailing\n", want: block},
		{name: "none", file: "# old\n", want: ""},
		{name: "start only", file: proxybenchStart + "\n", err: true},
		{name: "end only", file: proxybenchEnd + "\n", err: true},
		{name: "reversed", file: proxybenchEnd + "\n" + proxybenchStart + "\n", err: true},
	} {
		got, err := proxybenchBlock(write(tc.name, tc.file))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
	if got, err := proxybenchBlock(filepath.Join(dir, "missing")); got != "" || err != nil {
		t.Errorf("missing file: got %q, %v", got, err)
	}
}
