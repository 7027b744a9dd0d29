package h1server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
)

var benchBody = []byte("hello, world\n")

func benchHandler(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = []string{"text/plain; charset=utf-8"}
	_, _ = w.Write(benchBody)
}

// benchKeepAlive sends b.N GET requests on one keep-alive connection and
// reads each small answer with a minimal parser (so the client adds few
// allocations of its own to the -benchmem figures, the same for both).
func benchKeepAlive(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /hello HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReaderSize(c, 4096)
	body := make([]byte, 64)
	clPrefix := []byte("Content-Length: ")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := -1
		for first := true; ; first = false {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if first {
				if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
					b.Fatalf("status line %q", line)
				}
				continue
			}
			if len(line) == 2 {
				break
			}
			if v, ok := bytes.CutPrefix(line, clPrefix); ok {
				n, err = strconv.Atoi(string(bytes.TrimSpace(v)))
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		if n != len(benchBody) {
			b.Fatalf("Content-Length %d", n)
		}
		if _, err := io.ReadFull(br, body[:n]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkServeKeepAlive(b *testing.B) {
	_, addr := startOurs(b, http.HandlerFunc(benchHandler), nil)
	benchKeepAlive(b, addr)
}

func BenchmarkServeKeepAliveNetHTTP(b *testing.B) {
	_, addr := startStd(b, http.HandlerFunc(benchHandler), nil)
	benchKeepAlive(b, addr)
}

// BenchmarkWriteHead writes a proxied answer's head (status line and the
// fields a gateway forwards) into a buffer: the per-answer work of
// WriteHeader without the socket.
func BenchmarkWriteHead(b *testing.B) {
	req, _ := http.NewRequest(http.MethodGet, "http://bench/", nil)
	w := &response{req: req, bw: bufio.NewWriterSize(io.Discard, 4096)}
	w.header = http.Header{
		"X-Request-Id":   {"8e99eae43f59-1"},
		"Content-Length": {"100"},
		"Content-Type":   {"application/json"},
		"Date":           {"Thu, 26 Nov 2026 19:48:33 GMT"},
	}
	w.status, w.declared = http.StatusOK, 100
	b.ReportAllocs()
	for b.Loop() {
		w.writeHead()
		w.bw.Reset(io.Discard)
	}
}
