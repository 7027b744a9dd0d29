package redistest

import (
	"testing"
)

func TestServerStopRestart(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("ping after start: %v", err)
	}
	s.Stop()
	if err := ping(s.Addr()); err == nil {
		t.Fatal("ping after Stop: got an answer; want none")
	}
	s.Restart()
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("ping after Restart: %v", err)
	}
}

func TestStartUsesREDIS_URLAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, want string }{
		{"redis://127.0.0.1:6390/0", "127.0.0.1:6390"},
		{"redis://:secret@cache.internal", "cache.internal:6379"},
	} {
		got, err := addrFromURL(tc.url)
		if err != nil || got != tc.want {
			t.Errorf("addrFromURL(%q): got %q, %v; want %q", tc.url, got, err, tc.want)
		}
	}
	if _, err := addrFromURL("not a url"); err == nil {
		t.Error("addrFromURL(\"not a url\"): got nil error; want one")
	}
}

func TestKeyPrefixUnique(t *testing.T) {
	t.Parallel()
	if a, b := KeyPrefix(t), KeyPrefix(t); a == b {
		t.Errorf("got %q twice; want distinct prefixes", a)
	}
}
