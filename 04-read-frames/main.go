// Chapter 04: reading frames.
//
// Chapter 03 accepted the handshake and printed what followed as hex. Now
// the server decodes those bytes: each frame's FIN bit, reserved bits and
// opcode, the mask bit, the payload length in its 7-, 16- or 64-bit form,
// the masking key, and the payload, unmasked. The terminal dissects every
// frame field by field. What RFC 6455 forbids a client to send is refused
// with the rule it broke, and a length over the limit is refused before any
// memory is set aside for it. The decoder is in frame.go.
//
//	go run ./04-read-frames
package main

import (
	"bufio"
	"crypto/sha1"
	_ "embed"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"time"
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "127.0.0.1:8002", "host:port to listen on (port 0 picks a free one)")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("chapter 04 listening: open http://%s/ in your browser\n\n", ln.Addr())
	log.Fatal(newServer(os.Stdout).serve(ln))
}

// server holds what every connection needs: where to print, and the
// limits that keep one client from costing us unbounded memory or time.
type server struct {
	out         io.Writer
	headLimit   int           // the largest request head we accept, in bytes
	headTimeout time.Duration // how long a client has to send the whole head
	idleTimeout time.Duration // how long an open WebSocket may stay silent
	maxPayload  uint64        // the largest frame payload we accept, in bytes
}

func newServer(out io.Writer) *server {
	return &server{
		out:         out,
		headLimit:   8 << 10, // 8 KiB, the usual limit of web servers
		headTimeout: 10 * time.Second,
		idleTimeout: 10 * time.Minute,
		maxPayload:  16 << 20, // 16 MiB
	}
}

// serve accepts connections until ln is closed. Each connection gets its own
// goroutine, so one slow client never holds up the next.
func (s *server) serve(ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go s.handle(conn)
	}
}

// handle reads one request head, prints it as a table and answers: the page
// at /, the WebSocket handshake at /ws.
func (s *server) handle(conn net.Conn) {
	defer conn.Close()
	from := conn.RemoteAddr()

	// One deadline for the whole head, not one per Read: a client that
	// trickles a byte every few seconds must not keep us waiting forever.
	conn.SetDeadline(time.Now().Add(s.headTimeout))
	br := bufio.NewReader(conn)
	head, err := readHead(br, s.headLimit)
	if errors.Is(err, errHeadTooLarge) {
		fmt.Fprintf(s.out, "--- %s: 431, request head over %d bytes ---\n\n", from, s.headLimit)
		refuse(conn, "431 Request Header Fields Too Large", fmt.Sprintf("request head over %d bytes", s.headLimit))
		return
	}
	if err != nil {
		fmt.Fprintf(s.out, "--- %s: no complete request head: %v ---\n\n", from, err)
		return
	}

	req, err := parseHead(head)
	if errors.Is(err, errHTTPVersion) {
		fmt.Fprintf(s.out, "--- %s: 505, %v ---\n\n", from, err)
		refuse(conn, "505 HTTP Version Not Supported", err.Error())
		return
	}
	if err != nil {
		fmt.Fprintf(s.out, "--- %s: 400, %v ---\n\n", from, err)
		refuse(conn, "400 Bad Request", err.Error())
		return
	}
	fmt.Fprintf(s.out, "--- %s: %d bytes ---\n%s\n", from, len(head), req.table())

	switch {
	case req.method == "GET" && req.target == "/":
		respond(conn, "200 OK", "text/html; charset=utf-8", page)
	case req.target == "/ws":
		s.upgrade(conn, br, req)
	default:
		respond(conn, "404 Not Found", "text/plain; charset=utf-8",
			[]byte("chapter 04 serves its page at / and WebSocket connections at /ws\n"))
	}
}

var errHeadTooLarge = errors.New("request head too large")

// readHead reads the request head: every line up to and including the empty
// line that ends it. TCP is a stream of bytes, not of messages: one Read may
// return half a line, or the head and the start of whatever follows. The
// bufio.Reader hides that, and whatever it read past the head stays in it
// for the next stage (from chapter 03 on, the WebSocket is read from the
// same reader).
func readHead(r *bufio.Reader, limit int) ([]byte, error) {
	var head []byte
	lineStart := 0
	for {
		chunk, err := r.ReadSlice('\n')
		if len(head)+len(chunk) > limit {
			return nil, errHeadTooLarge
		}
		head = append(head, chunk...)
		if err == bufio.ErrBufferFull {
			continue // a line longer than the reader's buffer: keep reading it
		}
		if err != nil {
			return nil, err
		}
		line := head[lineStart:]
		if string(line) == "\r\n" || string(line) == "\n" {
			return head, nil
		}
		lineStart = len(head)
	}
}

// request is a parsed request head. Header fields keep the order and the
// spelling they arrived with; lookups ignore case.
type request struct {
	method, target, proto string
	major, minor          int // the digits of proto, as numbers: 1 and 1 for HTTP/1.1
	fields                []field
}

type field struct{ name, value string }

// header returns the value of the named field, whatever case either side
// uses (RFC 9110 section 5.1: field names are case-insensitive). A field sent
// more than once is joined with commas, as RFC 9110 section 5.3 allows.
func (r *request) header(name string) string {
	var values []string
	for _, f := range r.fields {
		if strings.EqualFold(f.name, name) {
			values = append(values, f.value)
		}
	}
	return strings.Join(values, ", ")
}

// parseHead turns the bytes of a request head into a request. It accepts
// lines ending in CRLF, or in a bare LF as RFC 9112 section 2.2 allows, and
// refuses anything it cannot read unambiguously. A version other than
// HTTP/1.x is refused with an error that wraps errHTTPVersion.
func parseHead(head []byte) (*request, error) {
	lines := strings.Split(strings.TrimSuffix(string(head), "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	if len(lines) < 2 || lines[len(lines)-1] != "" {
		return nil, errors.New("request head does not end with an empty line")
	}
	lines = lines[:len(lines)-1]

	// The request line: METHOD SP TARGET SP VERSION (RFC 9112 section 3).
	parts := strings.Split(lines[0], " ")
	if len(parts) != 3 || !isToken(parts[0]) || parts[1] == "" || !isHTTPVersion(parts[2]) {
		return nil, fmt.Errorf("malformed request line %q", lines[0])
	}
	req := &request{method: parts[0], target: parts[1], proto: parts[2]}
	// isHTTPVersion has checked the shape HTTP/d.d. The digits are compared
	// as numbers from here on, never as text.
	req.major, req.minor = int(req.proto[5]-'0'), int(req.proto[7]-'0')

	// Header fields: NAME ":" OWS VALUE OWS (RFC 9110 section 5).
	hosts := 0
	for _, line := range lines[1:] {
		if line == "" {
			return nil, errors.New("empty line inside the request head")
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, fmt.Errorf("folded header line %q (obsolete line folding is refused, RFC 9112 section 5.2)", line)
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("header line without a colon: %q", line)
		}
		if !isToken(name) {
			return nil, fmt.Errorf("invalid header name %q", name)
		}
		value = strings.Trim(value, " \t")
		if strings.ContainsFunc(value, isControl) {
			return nil, fmt.Errorf("control character in the value of header %q", name)
		}
		if strings.EqualFold(name, "Host") {
			hosts++
		}
		req.fields = append(req.fields, field{name, value})
	}

	// The head reads as HTTP/1, but it must also be a request we can
	// serve. Another major version means another message syntax, which we
	// do not speak (RFC 9110 sections 2.5 and 15.6.6). Two Host fields
	// leave it unclear which host the request is for.
	if req.major != 1 {
		return nil, fmt.Errorf("%w %q: this server speaks HTTP/1.1 (RFC 9110 section 15.6.6)", errHTTPVersion, req.proto)
	}
	if hosts > 1 {
		return nil, errors.New("more than one Host header (RFC 9112 section 3.2)")
	}
	return req, nil
}

// errHTTPVersion marks the refusal of a request whose major version is not
// 1: the answer is 505, not 400.
var errHTTPVersion = errors.New("unsupported HTTP version")

// isToken reports whether s is an HTTP token: the characters allowed in a
// method or a header name (RFC 9110 section 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// isHTTPVersion reports whether s looks like "HTTP/1.1".
func isHTTPVersion(s string) bool {
	return len(s) == 8 && strings.HasPrefix(s, "HTTP/") &&
		s[5] >= '0' && s[5] <= '9' && s[6] == '.' && s[7] >= '0' && s[7] <= '9'
}

// isControl reports the characters a header value may not hold: every ASCII
// control character but tab.
func isControl(c rune) bool {
	return c < 0x20 && c != '\t' || c == 0x7f
}

// handshakeFields are the fields chapter 03 needs to answer a WebSocket
// upgrade (RFC 6455 section 4.2.1).
var handshakeFields = []string{"Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"}

// table renders the request for the terminal: the request line, every field
// in the order received (the handshake's marked with *), then the handshake's
// fields looked up by lower-case name to show that case does not matter.
func (r *request) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\n", r.method, r.target, r.proto)
	for _, f := range r.fields {
		mark := " "
		for _, name := range handshakeFields {
			if strings.EqualFold(f.name, name) {
				mark = "*"
			}
		}
		fmt.Fprintf(&b, "%s %-26s %s\n", mark, f.name, f.value)
	}
	b.WriteString("* the handshake needs these; looked up in lower case:\n")
	for _, name := range handshakeFields {
		lower := strings.ToLower(name)
		fmt.Fprintf(&b, "  %-26s %q\n", lower, r.header(lower))
	}
	return b.String()
}

// upgrade answers a request for /ws: a refusal with the reason, or the
// 101 response that turns this TCP connection into a WebSocket.
func (s *server) upgrade(conn net.Conn, br *bufio.Reader, req *request) {
	from := conn.RemoteAddr()
	if r := checkUpgrade(req); r != nil {
		fmt.Fprintf(s.out, "--- %s: %s, %s ---\n\n", from, r.status, r.reason)
		refuse(conn, r.status, r.reason, r.header...)
		return
	}
	accept := acceptKey(req.header("Sec-WebSocket-Key"))
	fmt.Fprintf(conn, "HTTP/1.1 101 Switching Protocols\r\n"+
		"Upgrade: websocket\r\n"+
		"Connection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: %s\r\n"+
		"\r\n", accept)
	fmt.Fprintf(s.out, "--- %s: 101 Switching Protocols, Sec-WebSocket-Accept: %s ---\n\n", from, accept)
	s.readFrames(conn, br)
}

// refusal is a handshake the server will not accept: the status to answer
// with, any header that status calls for, and the reason in words.
type refusal struct {
	status string
	header []string
	reason string
}

// checkUpgrade applies the rules of RFC 6455 section 4.2.1 to a request for
// the WebSocket endpoint. It checks the version before the key: a client
// of another version may send a key of another shape, and what it needs to
// hear is 426 and the version we speak. It returns nil for a valid opening
// handshake.
func checkUpgrade(req *request) *refusal {
	bad := func(reason string) *refusal { return &refusal{status: "400 Bad Request", reason: reason} }
	// A body on the handshake has no place to go: once we answer 101, its
	// bytes would be read as WebSocket frames.
	withBody := func(field string) *refusal {
		return bad(fmt.Sprintf("the opening handshake must not have a body (a GET body has no defined meaning, RFC 9110 section 9.3.1), but it has %q",
			field+": "+req.header(field)))
	}
	switch {
	case req.method != "GET":
		return &refusal{"405 Method Not Allowed", []string{"Allow: GET"},
			"the opening handshake must be a GET request (RFC 6455 section 4.1), not " + req.method}
	case req.minor < 1: // parseHead has refused every major version but 1
		return bad("the opening handshake needs HTTP/1.1 or higher (RFC 6455 section 4.1), not " + req.proto)
	case req.header("Transfer-Encoding") != "":
		return withBody("Transfer-Encoding")
	case req.header("Content-Length") != "" && req.header("Content-Length") != "0":
		return withBody("Content-Length")
	case req.header("Host") == "":
		return bad("missing Host header (RFC 6455 section 4.1)")
	case !hasToken(req.header("Upgrade"), "websocket"):
		return bad(`missing "Upgrade: websocket" (RFC 6455 section 4.2.1)`)
	case !hasToken(req.header("Connection"), "upgrade"):
		return bad(`"Connection" must include "Upgrade" (RFC 6455 section 4.2.1)`)
	case req.header("Sec-WebSocket-Version") != "13":
		// Name the version we speak, so that the client can retry with it
		// (RFC 6455 section 4.4).
		return &refusal{"426 Upgrade Required", []string{"Sec-WebSocket-Version: 13"},
			fmt.Sprintf("unsupported Sec-WebSocket-Version %q: this server speaks 13 (RFC 6455 section 4.4)", req.header("Sec-WebSocket-Version"))}
	}
	key := req.header("Sec-WebSocket-Key")
	if nonce, err := base64.StdEncoding.DecodeString(key); err != nil || len(nonce) != 16 {
		return bad(fmt.Sprintf("Sec-WebSocket-Key %q is not 16 bytes in base64 (RFC 6455 section 4.1)", key))
	}
	return nil
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

// readFrames decodes and dissects frames until the client sends a close
// frame, breaks a rule, or goes quiet for longer than idleTimeout. This
// chapter cannot send frames yet, so it answers nothing: a close frame or a
// bad frame simply ends the TCP connection (chapter 06 does the closing
// handshake properly).
func (s *server) readFrames(conn net.Conn, br *bufio.Reader) {
	from := conn.RemoteAddr()
	frames := &frameReader{r: br, maxPayload: s.maxPayload}
	var message messageSum
	for n := 1; ; n++ {
		conn.SetReadDeadline(time.Now().Add(s.idleTimeout))
		f, err := frames.next()
		if err != nil {
			fmt.Fprintf(s.out, "--- %s: connection over: %v ---\n\n", from, err)
			return
		}
		fmt.Fprintf(s.out, "--- %s: frame %d, %d bytes on the wire ---\n%s",
			from, n, len(f.header)+len(f.payload), dissect(f))
		if f.opcode == opClose {
			fmt.Fprintf(s.out, "\n--- %s: close frame received: hanging up ---\n\n", from)
			return
		}
		if f.opcode < opClose { // a data frame: text, binary or continuation
			summary, err := message.add(f)
			if err != nil {
				fmt.Fprintf(s.out, "\n--- %s: connection over: %v ---\n\n", from, err)
				return
			}
			if summary != "" {
				fmt.Fprintf(s.out, "  %s\n", summary)
			}
		}
		fmt.Fprintln(s.out)
	}
}

// respond writes a complete HTTP/1.1 response by hand: a status line, the
// headers, a blank line, the body. Connection: close tells the browser not
// to send another request on this connection, since we read only one.
func respond(conn net.Conn, status, contentType string, body []byte, headers ...string) {
	fmt.Fprintf(conn, "HTTP/1.1 %s\r\n", status)
	for _, h := range headers {
		fmt.Fprintf(conn, "%s\r\n", h)
	}
	fmt.Fprintf(conn, "Content-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", contentType, len(body))
	conn.Write(body)
}

// refuse answers a request the server will not serve, with the status and
// the reason in words, and hangs up so that the answer arrives. Closing a
// connection while the client's bytes are still coming in (the rest of a
// head over the limit, a body we never read) makes the kernel reset it,
// and a reset can destroy the answer before the client has read it. So we
// first close only our sending side, which tells the client the answer is
// complete, then read and drop what the client still sends until it closes
// too, for at most lingerTime and lingerBytes, and only then close.
func refuse(conn net.Conn, status, reason string, headers ...string) {
	respond(conn, status, "text/plain; charset=utf-8", []byte(reason+"\n"), headers...)
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, conn, lingerBytes)
	conn.Close()
}

// How long, and how much, refuse keeps reading after its answer.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 1 << 20 // 1 MiB
)
