package proxy

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net/http"
	"strings"

	"github.com/portunus-gw/portunus/internal/pipeline"
	"github.com/portunus-gw/portunus/internal/problem"
)

// upgrade completes a 101 Switching Protocols answer: it checks the
// upstream switched to the protocol the client asked for, takes over the
// client connection, writes the 101 head and copies bytes both ways until
// either side closes. Both copy goroutines end before it returns.
func (h *handler) upgrade(w http.ResponseWriter, r *http.Request, s *pipeline.State, out *http.Request, res *http.Response) {
	asked := upgradeType(out.Header)
	got := upgradeType(res.Header)
	if asked == "" || !strings.EqualFold(asked, got) {
		res.Body.Close()
		h.fail(w, r, s, problem.BadGateway, 0, "upstream switched protocols without a matching upgrade request")
		return
	}
	if strings.EqualFold(asked, "websocket") && !validAccept(out.Header["Sec-Websocket-Key"], res.Header["Sec-Websocket-Accept"]) {
		// Not the answer to this handshake (RFC 6455 §4.2.2): a cache
		// or a confused upstream replayed someone else's. Closing the
		// body closes the upstream connection, which is never reused.
		res.Body.Close()
		h.fail(w, r, s, problem.BadGateway, 0, "upstream answered the WebSocket upgrade without a valid Sec-WebSocket-Accept")
		return
	}
	back, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		res.Body.Close()
		h.fail(w, r, s, problem.BadGateway, 0, "upstream switched protocols on a connection that cannot be taken over")
		return
	}
	defer back.Close()

	removeHopByHop(res.Header)
	hdr := res.Header
	for k, vv := range w.Header() {
		if _, ok := hdr[k]; !ok {
			hdr[k] = vv
		}
	}
	h.respRules.Apply(hdr, r, s)
	hdr["Connection"] = valUpgrade
	hdr["Upgrade"] = []string{got}

	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.fail(w, r, s, problem.Internal, 0, "the client connection cannot be upgraded")
		return
	}
	defer conn.Close()
	if !writeSwitchHead(brw.Writer, hdr) {
		return
	}

	errc := make(chan error, 2) // sized so neither copier blocks on send
	go copyConn(errc, back, brw.Reader)
	go copyConn(errc, conn, back)
	<-errc
	// One direction ended: closing both ends the other copy.
	conn.Close()
	back.Close()
	<-errc
}

func writeSwitchHead(bw *bufio.Writer, hdr http.Header) bool {
	if _, err := bw.WriteString("HTTP/1.1 101 Switching Protocols\r\n"); err != nil {
		return false
	}
	if err := hdr.Write(bw); err != nil {
		return false
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return false
	}
	return bw.Flush() == nil
}

func copyConn(errc chan<- error, dst io.Writer, src io.Reader) {
	bp := bufPool.Get().(*[]byte)
	_, err := io.CopyBuffer(dst, src, *bp)
	bufPool.Put(bp)
	errc <- err
}

// upgradeType returns the Upgrade protocol when h is an upgrade message.
func upgradeType(h http.Header) string {
	if !hasToken(h["Connection"], "upgrade") {
		return ""
	}
	if v := h["Upgrade"]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// websocketGUID is appended to the client's key to derive the accept
// value (RFC 6455 §1.3).
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// WebSocketAccept returns the Sec-WebSocket-Accept value that answers key.
func WebSocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// validAccept reports whether the upstream's Sec-WebSocket-Accept answers
// the one Sec-WebSocket-Key the gateway forwarded.
func validAccept(keys, accept []string) bool {
	if len(keys) != 1 || len(accept) != 1 {
		return false
	}
	return strings.TrimSpace(accept[0]) == WebSocketAccept(strings.TrimSpace(keys[0]))
}
