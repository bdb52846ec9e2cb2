package booktest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// ChromiumUpgrade is the WebSocket upgrade request Chromium 156 sent to
// chapter 01 (captured by its browser test, with the port set to 8002).
// Tests replay it where a transcript must not change from run to run.
const ChromiumUpgrade = "GET /ws HTTP/1.1\r\n" +
	"Host: 127.0.0.1:8002\r\n" +
	"Connection: Upgrade\r\n" +
	"Pragma: no-cache\r\n" +
	"Cache-Control: no-cache\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36\r\n" +
	"Upgrade: websocket\r\n" +
	"Origin: http://127.0.0.1:8002\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Sec-WebSocket-Key: XsHZY8QPU4vSCuJAE8N/dw==\r\n" +
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
	"\r\n"

// UpgradeRequest builds a valid opening handshake for /ws, then lets a test
// break it: changes are pairs of a field name and a value, that set the
// field of that exact name to the value, delete it if the value is "", or
// add the field if no field has that name. Names are matched as written,
// so "sec-websocket-key" adds a second key beside Sec-WebSocket-Key.
//
//	UpgradeRequest("GET", "Sec-WebSocket-Version", "8") // a version the server refuses
func UpgradeRequest(method string, changes ...string) string {
	fields := [][2]string{
		{"Host", "127.0.0.1:8002"},
		{"Upgrade", "websocket"},
		{"Connection", "Upgrade"},
		{"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
		{"Sec-WebSocket-Version", "13"},
	}
	for i := 0; i+1 < len(changes); i += 2 {
		found := false
		for j := range fields {
			if fields[j][0] == changes[i] {
				fields[j][1], found = changes[i+1], true
			}
		}
		if !found {
			fields = append(fields, [2]string{changes[i], changes[i+1]})
		}
	}
	var b strings.Builder
	b.WriteString(method + " /ws HTTP/1.1\r\n")
	for _, f := range fields {
		if f[1] != "" {
			b.WriteString(f[0] + ": " + f[1] + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// Dial opens a TCP connection to addr that is closed when the test ends and
// gives up on any read or write after ten seconds.
func Dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn
}

// Conn is a test's end of a connection after an HTTP response: write to it
// directly, and read through R, which holds whatever arrived after the
// response.
type Conn struct {
	net.Conn
	R *bufio.Reader
}

// Request sends raw bytes to addr and reads the HTTP response, body included
// (but for a 101, whose body is the WebSocket that follows). The connection is
// returned too, for tests that go on talking after the response.
func Request(t testing.TB, addr, raw string) (*http.Response, string, *Conn) {
	t.Helper()
	conn := Dial(t, addr)
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("write request: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	var body strings.Builder
	if resp.StatusCode != http.StatusSwitchingProtocols {
		if _, err := io.Copy(&body, resp.Body); err != nil {
			t.Fatalf("read body: %v", err)
		}
	}
	return resp, body.String(), &Conn{conn, br}
}

// RequestWhileSending sends raw to addr, then goes on sending a few bytes
// more while the server answers, as a client does that has more to send
// than the server will read (a head over the limit, a body), and only then
// reads the answer, to its end. It fails the test if the server resets
// the connection on the way: the client's late writes fail, or its read
// ends in an error instead of a clean end, and a reset can destroy an
// answer the client has not read yet.
func RequestWhileSending(t testing.TB, addr, raw string) (resp *http.Response, body string) {
	t.Helper()
	conn := Dial(t, addr)
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("write request: %v", err)
	}
	for range 5 {
		time.Sleep(10 * time.Millisecond) // the server answers meanwhile
		if _, err := io.WriteString(conn, "more"); err != nil {
			t.Fatalf("the server reset the connection while the client was still sending: %v", err)
		}
	}
	answer, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("the answer did not end cleanly: %v", err)
	}
	resp, err = http.ReadResponse(bufio.NewReader(strings.NewReader(string(answer))), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}
