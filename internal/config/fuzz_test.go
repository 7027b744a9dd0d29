package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and that it returns either a
// config or an ErrorList whose every entry has a position.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"listeners": [{"address": ":0"}], "routes": [{"upstream": [{"name": 1}]}]}`))
	f.Add([]byte("a: &a {b: *a}"))
	f.Add([]byte("routes: [{<<: {name: x}, match: {path: '/{a}/{a}'}}]"))
	env := mapEnv(map[string]string{"X": "1", "Y": "${X}"})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data, env)
		if err == nil {
			if c == nil {
				t.Fatal("nil config without error")
			}
			_ = c.Hash()
			return
		}
		list, ok := err.(ErrorList)
		if !ok {
			t.Fatalf("error of type %T; want ErrorList", err)
		}
		if len(list) == 0 {
			t.Fatal("empty ErrorList")
		}
		for _, e := range list {
			if e.Line < 0 || e.Col < 0 || e.Msg == "" {
				t.Fatalf("malformed error %+v", e)
			}
		}
	})
}

// BenchmarkLoad10kRoutes parses, validates and completes a config of
// 10,000 routes over 100 upstreams.
func BenchmarkLoad10kRoutes(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("listeners: [{address: \"127.0.0.1:8080\"}]\npolicy_sets:\n  std: {timeout: 5s, response_headers: {remove: [Server]}}\nupstreams:\n")
	for i := range 100 {
		fmt.Fprintf(&sb, "  - name: up%d\n    targets: [{url: \"http://10.0.%d.1:8080\"}, {url: \"http://10.0.%d.2:8080\", weight: 2}]\n", i, i, i)
	}
	sb.WriteString("routes:\n")
	for i := range 10000 {
		fmt.Fprintf(&sb, "  - name: r%d\n    use: [std]\n    match: {hosts: [h%d.example.com], path: \"/v1/res%d/{id}\", methods: [GET, POST]}\n    upstream: up%d\n    rewrite: {path: \"/res/{id}\"}\n", i, i%50, i, i%100)
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		c, err := Parse("bench.yaml", data, noEnv)
		if err != nil {
			b.Fatal(err)
		}
		if len(c.Routes) != 10000 {
			b.Fatalf("got %d routes", len(c.Routes))
		}
	}
}
