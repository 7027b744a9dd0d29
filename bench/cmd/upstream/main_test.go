package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestBodyIsFixedSizeJSON(t *testing.T) {
	t.Parallel()
	if got, want := len(body), bodySize; got != want {
		t.Fatalf("len(body) = %d; want %d", got, want)
	}
	if !json.Valid(body) {
		t.Fatalf("body is not valid JSON: %q", body)
	}
}

func TestServeAnswersEveryRequest(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = newServer()
	srv.Start()
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 10 * time.Second}

	cases := []struct {
		name, method, path, reqBody string
	}{
		{name: "get root", method: http.MethodGet, path: "/"},
		{name: "get deep path", method: http.MethodGet, path: "/a/b/c?x=1"},
		{name: "post with body", method: http.MethodPost, path: "/submit", reqBody: strings.Repeat("x", 4096)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.reqBody))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status = %d; want 200", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q; want application/json", ct)
			}
			if resp.ContentLength != bodySize {
				t.Errorf("Content-Length = %d; want %d", resp.ContentLength, bodySize)
			}
			if string(got) != string(body) {
				t.Errorf("body = %q; want %q", got, body)
			}
		})
	}
}

func TestRequireLoopback(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, addr string
		ok         bool
	}{
		{name: "ipv4 loopback", addr: "127.0.0.1:0", ok: true},
		{name: "ipv6 loopback", addr: "[::1]:8081", ok: true},
		{name: "wildcard", addr: ":8081", ok: false},
		{name: "any ipv4", addr: "0.0.0.0:8081", ok: false},
		{name: "host name", addr: "localhost:8081", ok: false},
		{name: "no port", addr: "127.0.0.1", ok: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := requireLoopback(tc.addr)
			if got := err == nil; got != tc.ok {
				t.Errorf("requireLoopback(%q) error = %v; want ok=%v", tc.addr, err, tc.ok)
			}
		})
	}
}
