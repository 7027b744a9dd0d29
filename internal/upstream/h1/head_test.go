package h1

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// The request head carries every field of the request, each value on a
// line of its own, sorted by name, past the 32 fields the write buffer
// sorts in place; a value or name that could split the head is refused
// before anything is sent.
func TestRequestHeadFields(t *testing.T) {
	heads := make(chan string, 8)
	addr := rawServer(t, func(_ int, c net.Conn) {
		br := bufio.NewReader(c)
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		heads <- head.String()
		io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
	})
	c := newClient(t, Options{})

	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/p?q=1", nil)
	want := "GET /p?q=1 HTTP/1.1\r\nHost: " + addr + "\r\n"
	for i := 39; i >= 0; i-- { // inserted in reverse: the sort has work to do
		req.Header[fmt.Sprintf("X-Field-%02d", i)] = []string{"a", fmt.Sprint(i)}
	}
	for i := range 40 {
		want += fmt.Sprintf("X-Field-%02d: a\r\nX-Field-%02d: %d\r\n", i, i, i)
	}
	want += "\r\n"
	res, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := <-heads; got != want {
		t.Errorf("head\n%q\nwant\n%q", got, want)
	}

	for _, h := range []http.Header{
		{"X-Ok": {"1"}, "X-Bad": {"v\r\nInjected: 1"}},
		{"X-Ok": {"1"}, "X-Bad": {"v\nInjected: 1"}},
		{"X-Ok": {"1"}, "Bad Name": {"v"}},
		{"X-Ok": {"1"}, "Bad:Name": {"v"}},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Header = h
		if res, err := c.RoundTrip(req); err == nil {
			res.Body.Close()
			t.Errorf("%v: sent; want an error", h)
		}
	}
	// A request sent after the refusals is the next head the upstream
	// reads: none of the refused ones got there before it.
	req, _ = http.NewRequest(http.MethodGet, "http://"+addr+"/after", nil)
	res, err = c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := <-heads; !strings.HasPrefix(got, "GET /after ") {
		t.Errorf("the upstream read %q before the request after the refusals", got)
	}
}
