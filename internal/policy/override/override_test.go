package override

import (
	"errors"
	"testing"
)

func TestCacheCompilesOncePerVersion(t *testing.T) {
	settings := map[string][]int{"alice": {1, 2}}
	compiles := 0
	c := &Cache[int, int]{
		Lookup: func(name string) []int { return settings[name] },
		Compile: func(_ string, s []int) (int, error) {
			compiles++
			if s[0] < 0 {
				return 0, errors.New("bad")
			}
			return s[0] + s[1], nil
		},
	}
	if _, ok := c.Get("bob"); ok {
		t.Fatal("a consumer without settings has an override")
	}
	for range 3 {
		if v, ok := c.Get("alice"); !ok || v != 3 {
			t.Fatalf("Get = %d, %v; want 3, true", v, ok)
		}
	}
	if compiles != 1 {
		t.Fatalf("compiled %d times for one version; want 1", compiles)
	}
	settings["alice"] = []int{5, 5} // a change is a new slice
	if v, ok := c.Get("alice"); !ok || v != 10 || compiles != 2 {
		t.Fatalf("after a change: %d, %v, %d compiles; want 10, true, 2", v, ok, compiles)
	}
	settings["alice"] = []int{-1, 0}
	if _, ok := c.Get("alice"); ok {
		t.Fatal("settings that do not compile must leave the route's in place")
	}
}

func TestCacheStartsOverWhenFull(t *testing.T) {
	s := []int{1}
	c := &Cache[int, int]{
		Lookup:  func(string) []int { return s },
		Compile: func(string, []int) (int, error) { return 1, nil },
	}
	c.size = maxEntries
	c.entries.Store("old", &entry[int, int]{src: &s[0], c: 1})
	if _, ok := c.Get("new"); !ok {
		t.Fatal("Get failed")
	}
	if _, found := c.entries.Load("old"); found || c.size != 1 {
		t.Fatalf("full cache kept old entries (size %d)", c.size)
	}
}
