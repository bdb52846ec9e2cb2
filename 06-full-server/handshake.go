package main

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// upgrader answers WebSocket handshakes inside net/http. Chapter 03 read and
// parsed the request by hand; here net/http does that (with its own limits
// and timeouts, set in main), and the upgrader checks what is specific to
// WebSocket, answers 101 and takes the TCP connection over with Hijack.
type upgrader struct {
	origins []string // origins allowed besides the server's own host (-origin)
	hosts   []string // host names allowed besides loopback ones (-host)
	limits  *Limits
	memory  *messageMemory // shared by both upgraders' connections
	log     *slog.Logger
}

// upgrade checks the request and, if it is a valid opening handshake from
// an allowed origin, switches the connection to WebSocket. Otherwise it
// answers with the status and the reason, and returns nil.
func (u *upgrader) upgrade(w http.ResponseWriter, r *http.Request) *Conn {
	if status, reason, header := u.check(r); status != 0 {
		u.log.Info("handshake refused", "remote", r.RemoteAddr, "path", r.URL.Path, "status", status, "reason", reason)
		if header != "" {
			name, value, _ := strings.Cut(header, ": ")
			w.Header().Set(name, value)
		}
		http.Error(w, reason, status)
		return nil
	}
	hijacker, ok := w.(http.Hijacker)
	if !ok { // an HTTP/2 connection: RFC 8441 is out of this book's scope
		http.Error(w, "this connection cannot be switched to WebSocket", http.StatusInternalServerError)
		return nil
	}
	netConn, rw, err := hijacker.Hijack()
	if err != nil {
		u.log.Warn("hijack failed", "remote", r.RemoteAddr, "err", err)
		return nil
	}
	// From here on the connection is ours: net/http's deadlines no longer apply.
	netConn.SetDeadline(time.Now().Add(u.limits.WriteTimeout))
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\n"+
		"Upgrade: websocket\r\n"+
		"Connection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: %s\r\n"+
		"\r\n", acceptKey(r.Header.Get("Sec-WebSocket-Key")))
	if err := rw.Flush(); err != nil {
		netConn.Close()
		return nil
	}
	netConn.SetDeadline(time.Time{})
	// rw.Reader may already hold the client's first frames: they are read
	// first. net/http's buffers then go, with the rest of the request.
	buffered, _ := rw.Reader.Peek(rw.Reader.Buffered())
	return newConn(netConn, buffered, u.limits, u.memory)
}

// check applies the rules of RFC 6455 section 4.2.1 to a request for a
// WebSocket endpoint, as chapter 03's checkUpgrade did, then the origin
// check and the host check. It checks the version before the key: a client
// of another version may send a key of another shape, and what it needs to
// hear is 426 and the version we speak. It returns the status to refuse
// with, any header that status calls for and the reason in words, or 0 for
// a valid opening handshake.
func (u *upgrader) check(r *http.Request) (status int, reason, header string) {
	// value joins a field sent more than once with commas, as chapter 02's
	// request.header did: two keys, say, are then no valid key at all.
	value := func(name string) string { return strings.Join(r.Header.Values(name), ", ") }
	bad := func(reason string) (int, string, string) { return http.StatusBadRequest, reason, "" }
	// A body on the handshake has no place to go: once we answer 101, its
	// bytes would be read as WebSocket frames. Connection: close, so that
	// net/http does not wait to read the body before it answers.
	withBody := func(field string) (int, string, string) {
		return http.StatusBadRequest, fmt.Sprintf("the opening handshake must not have a body (a GET body has no defined meaning, RFC 9110 section 9.3.1), but it has %q",
			field), "Connection: close"
	}
	switch {
	case r.Method == http.MethodConnect:
		return http.StatusMethodNotAllowed, "WebSockets over HTTP/2 (RFC 8441) are not supported here: use HTTP/1.1", "Allow: GET"
	case r.Method != http.MethodGet:
		return http.StatusMethodNotAllowed, "the opening handshake must be a GET request (RFC 6455 section 4.1), not " + r.Method, "Allow: GET"
	case !r.ProtoAtLeast(1, 1): // net/http has refused every major version but 1
		return bad("the opening handshake needs HTTP/1.1 or higher (RFC 6455 section 4.1), not " + r.Proto)
	case len(r.TransferEncoding) > 0: // net/http moves the field here
		return withBody("Transfer-Encoding: " + strings.Join(r.TransferEncoding, ", "))
	case r.ContentLength != 0:
		return withBody("Content-Length: " + strconv.FormatInt(r.ContentLength, 10))
	// No check for Host: net/http refuses an HTTP/1.1 request without one.
	case !hasToken(value("Upgrade"), "websocket"):
		return bad(`missing "Upgrade: websocket" (RFC 6455 section 4.2.1)`)
	case !hasToken(value("Connection"), "upgrade"):
		return bad(`"Connection" must include "Upgrade" (RFC 6455 section 4.2.1)`)
	case value("Sec-WebSocket-Version") != "13":
		// Name the version we speak, so that the client can retry with it
		// (RFC 6455 section 4.4).
		return http.StatusUpgradeRequired,
			fmt.Sprintf("unsupported Sec-WebSocket-Version %q: this server speaks 13 (RFC 6455 section 4.4)", value("Sec-WebSocket-Version")),
			"Sec-WebSocket-Version: 13"
	}
	key := value("Sec-WebSocket-Key")
	if nonce, err := base64.StdEncoding.DecodeString(key); err != nil || len(nonce) != 16 {
		return bad(fmt.Sprintf("Sec-WebSocket-Key %q is not 16 bytes in base64 (RFC 6455 section 4.1)", key))
	}
	if origin := r.Header.Get("Origin"); !u.originAllowed(origin, r.Host) {
		if o, err := url.Parse(origin); err != nil || o.Host == "" {
			return http.StatusForbidden, fmt.Sprintf("origin %q is not a web site's: pages from files or sandboxed frames may not open WebSockets here", origin), ""
		}
		return http.StatusForbidden, fmt.Sprintf("origin %q may not open WebSockets here (start the server with -origin %s to allow it)", origin, origin), ""
	}
	if !u.hostAllowed(r) {
		return http.StatusForbidden, fmt.Sprintf("Host %q names neither localhost nor an IP address, and this connection came in on loopback: "+
			"refused as a possible DNS rebinding attack (start the server with -host NAME to allow a name)", r.Host), ""
	}
	return 0, "", ""
}

// originAllowed guards against cross-site WebSocket hijacking. A browser
// always sends Origin, and a page from another site must not use a
// visitor's cookies to talk to this server: by default the origin's host
// must be the host the request was sent to. A request without Origin does
// not come from a browser (a command-line or server-side client), and the
// attack needs a browser, so it is allowed.
func (u *upgrader) originAllowed(origin, host string) bool {
	if origin == "" {
		return true
	}
	o, err := url.Parse(origin)
	if err != nil || o.Host == "" {
		return false
	}
	if strings.EqualFold(o.Host, host) {
		return true
	}
	for _, allowed := range u.origins {
		if strings.EqualFold(allowed, origin) || strings.EqualFold(allowed, o.Host) {
			return true
		}
	}
	return false
}

// hostAllowed guards against DNS rebinding. A server on 127.0.0.1 is out of
// other machines' reach, but not out of a browser's: a page on
// evil.example can have its name re-resolved to 127.0.0.1 after it loads,
// and its script then talks to this server as evil.example, with Host and
// Origin both saying evil.example, which the origin check alone accepts.
// Such a request gives itself away by its Host: a connection that came in
// on a loopback address (whatever address the server listens on) must name
// localhost, an IP address (rebinding needs a name that DNS answers for,
// which an address is not, so [::]:8002 is fine), or a name given with
// -host.
func (u *upgrader) hostAllowed(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || !isLoopback(local) {
		return true // from another machine: a browser there cannot rebind to our loopback
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = strings.Trim(r.Host, "[]") // no port
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if net.ParseIP(host) != nil {
		return true
	}
	for _, allowed := range u.hosts {
		if strings.EqualFold(allowed, host) {
			return true
		}
	}
	return false
}

// isLoopback reports whether addr is a loopback address, such as
// 127.0.0.1:8002 or [::1]:8002.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// hasToken reports whether a comma-separated header value such as
// "keep-alive, Upgrade" holds token, ignoring case.
func hasToken(list, token string) bool {
	for _, item := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(item), token) {
			return true
		}
	}
	return false
}

// websocketGUID is the fixed string of RFC 6455 section 1.3. A server that
// is not a WebSocket server will not know it, so a correct accept value
// shows the client that the server understood the handshake: a plain HTTP
// server or cache cannot answer one by accident.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptKey computes Sec-WebSocket-Accept: the base64 of the SHA-1 hash of
// the client's key, as sent, followed by the GUID (RFC 6455 section 4.2.2).
func acceptKey(key string) string {
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}
