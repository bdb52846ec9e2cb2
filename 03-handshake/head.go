package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// readRequest reads one request head from br and parses it, within
// headTimeout and headLimit, and prints it as a table. A head it cannot
// read is answered with the status that says why (431, 505 or 400), or not
// at all if the client never finished it, and readRequest returns nil.
func (s *server) readRequest(conn net.Conn, br *bufio.Reader) *request {
	from := conn.RemoteAddr()

	// One deadline for the whole head, not one per Read: a client that
	// trickles a byte every few seconds must not keep us waiting forever.
	conn.SetDeadline(time.Now().Add(s.headTimeout))
	head, err := readHead(br, s.headLimit)
	if errors.Is(err, errHeadTooLarge) {
		fmt.Fprintf(s.out, "--- %s: 431, request head over %d bytes ---\n\n", from, s.headLimit)
		refuse(conn, "431 Request Header Fields Too Large", fmt.Sprintf("request head over %d bytes", s.headLimit))
		return nil
	}
	if err != nil {
		fmt.Fprintf(s.out, "--- %s: no complete request head: %v ---\n\n", from, err)
		return nil
	}

	req, err := parseHead(head)
	if errors.Is(err, errHTTPVersion) {
		fmt.Fprintf(s.out, "--- %s: 505, %v ---\n\n", from, err)
		refuse(conn, "505 HTTP Version Not Supported", err.Error())
		return nil
	}
	if err != nil {
		fmt.Fprintf(s.out, "--- %s: 400, %v ---\n\n", from, err)
		refuse(conn, "400 Bad Request", err.Error())
		return nil
	}
	fmt.Fprintf(s.out, "--- %s: %d bytes ---\n%s\n", from, len(head), req.table())
	return req
}

// errHeadTooLarge is readHead's error for a head over its limit: the
// answer is 431, not 400.
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
	// The target is visible ASCII (RFC 9112 section 3.2). Anything else, an
	// escape character above all, could do things to the terminal it is
	// printed on.
	if strings.ContainsFunc(parts[1], func(c rune) bool { return c <= ' ' || c >= 0x7f }) {
		return nil, fmt.Errorf("request target %q holds a character that is not visible ASCII (RFC 9112 section 3.2)", parts[1])
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
