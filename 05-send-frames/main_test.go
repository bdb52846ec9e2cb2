package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

// rfcRequest is the client handshake of RFC 6455 section 1.2, with the
// protocol and origin lines as the RFC prints them.
const rfcRequest = "GET /chat HTTP/1.1\r\n" +
	"Host: server.example.com\r\n" +
	"Upgrade: websocket\r\n" +
	"Connection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Origin: http://example.com\r\n" +
	"Sec-WebSocket-Protocol: chat, superchat\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"\r\n"

func TestParseHeadReadsTheRFCRequest(t *testing.T) {
	req, err := parseHead([]byte(rfcRequest))
	require.NoError(t, err)
	assert.Equal(t, "GET", req.method)
	assert.Equal(t, "/chat", req.target)
	assert.Equal(t, "HTTP/1.1", req.proto)
	assert.Equal(t, [2]int{1, 1}, [2]int{req.major, req.minor})
	assert.Len(t, req.fields, 7)
	assert.Equal(t, field{"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}, req.fields[3])
	assert.Equal(t, "chat, superchat", req.header("Sec-WebSocket-Protocol"))
}

func TestHeaderLookupIgnoresCase(t *testing.T) {
	req, err := parseHead([]byte("GET / HTTP/1.1\r\nsEc-WeBsOcKeT-vErSiOn:13\r\nUPGRADE:   websocket  \r\n\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "13", req.header("Sec-WebSocket-Version"))
	assert.Equal(t, "13", req.header("sec-websocket-version"))
	assert.Equal(t, "websocket", req.header("upgrade"), "optional white space around the value is trimmed")
	assert.Equal(t, "", req.header("Sec-WebSocket-Key"), "a missing field is empty")
}

func TestRepeatedFieldsAreJoinedWithCommas(t *testing.T) {
	req, err := parseHead([]byte("GET / HTTP/1.1\r\nConnection: keep-alive\r\nconnection: Upgrade\r\n\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "keep-alive, Upgrade", req.header("Connection"))
}

func TestBareLineFeedsAreAccepted(t *testing.T) {
	req, err := parseHead([]byte("GET / HTTP/1.1\nHost: a\n\n"))
	require.NoError(t, err)
	assert.Equal(t, "a", req.header("host"))
}

func TestParseHeadRefusesWhatItCannotRead(t *testing.T) {
	tests := []struct {
		name, head, wantErr string
	}{
		{"no request line", "\r\n", "does not end with an empty line"},
		{"no empty line", "GET / HTTP/1.1\r\nHost: a\r\n", "does not end with an empty line"},
		{"two words", "GET /\r\n\r\n", "malformed request line"},
		{"four words", "GET / x HTTP/1.1\r\n\r\n", "malformed request line"},
		{"double space", "GET  / HTTP/1.1\r\n\r\n", "malformed request line"},
		{"not HTTP", "GET / SPDY/3\r\n\r\n", "malformed request line"},
		{"method not a token", "G(T / HTTP/1.1\r\n\r\n", "malformed request line"},
		{"no colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", "without a colon"},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", `invalid header name "Host "`},
		{"empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n", "invalid header name"},
		{"folded line", "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", "folded header line"},
		{"control character", "GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n", "control character"},
		{"empty line inside (found by FuzzParseHead)", "0 0 HTTP/0.0\n\n\r", "empty line inside the request head"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseHead([]byte(tt.head))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestReadHeadAcrossManyReads(t *testing.T) {
	// One byte per Read: the worst a TCP stream can do to us.
	r := bufio.NewReader(iotest.OneByteReader(strings.NewReader(rfcRequest + "frame bytes")))
	head, err := readHead(r, 8<<10)
	require.NoError(t, err)
	assert.Equal(t, rfcRequest, string(head))

	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, "frame bytes", string(rest), "bytes after the head stay in the reader")
}

func TestReadHeadHandlesLinesLongerThanItsBuffer(t *testing.T) {
	long := "GET / HTTP/1.1\r\nCookie: " + strings.Repeat("x", 100) + "\r\n\r\n"
	head, err := readHead(bufio.NewReaderSize(strings.NewReader(long), 16), 8<<10)
	require.NoError(t, err)
	assert.Equal(t, long, string(head))
}

func TestReadHeadStopsAtTheLimit(t *testing.T) {
	endless := io.MultiReader(strings.NewReader("GET / HTTP/1.1\r\n"), neverEnding('a'))
	_, err := readHead(bufio.NewReader(endless), 8<<10)
	assert.ErrorIs(t, err, errHeadTooLarge)

	exact := "GET / HTTP/1.1\r\nA: " + strings.Repeat("b", 100) + "\r\n\r\n"
	_, err = readHead(bufio.NewReader(strings.NewReader(exact)), len(exact))
	assert.NoError(t, err, "a head of exactly the limit is fine")
	_, err = readHead(bufio.NewReader(strings.NewReader(exact)), len(exact)-1)
	assert.ErrorIs(t, err, errHeadTooLarge, "one byte over is not")
}

func TestReadHeadReportsAnEarlyClose(t *testing.T) {
	_, err := readHead(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: a\r\n")), 8<<10)
	assert.ErrorIs(t, err, io.EOF)
}

// neverEnding is a reader that produces the same byte forever.
type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// start runs the chapter's server for one test; change, if given, adjusts
// its settings first.
func start(t *testing.T, change func(*server)) (string, *booktest.Output) {
	return booktest.Serve(t, func(ln net.Listener, out io.Writer) error {
		s := newServer(out)
		if change != nil {
			change(s)
		}
		return s.serve(ln)
	})
}

func TestServerSendsThePageForAHeadSentByteByByte(t *testing.T) {
	addr, out := start(t, nil)
	conn := booktest.Dial(t, addr)
	raw := "GET / HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"
	for i := range len(raw) {
		_, err := conn.Write([]byte{raw[i]})
		require.NoError(t, err)
		time.Sleep(time.Millisecond) // let each byte leave in a packet of its own
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	out.WaitFor(t, "GET / HTTP/1.1\n")
}

func TestServerAnswers400WithTheReason(t *testing.T) {
	addr, out := start(t, nil)
	resp, body, _ := booktest.Request(t, addr, "GET / HTTP/1.1\r\nHost : a\r\n\r\n")
	assert.Equal(t, 400, resp.StatusCode)
	assert.Equal(t, "invalid header name \"Host \"\n", body)
	out.WaitFor(t, `400, invalid header name "Host "`)
}

// RFC 9112 section 3.2: a request with more than one Host field is
// invalid, and the answer is 400.
func TestServerAnswers400ToTwoHostFields(t *testing.T) {
	addr, out := start(t, nil)
	resp, body, _ := booktest.Request(t, addr, "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n")
	if assert.Equal(t, 400, resp.StatusCode) {
		assert.Equal(t, "more than one Host header (RFC 9112 section 3.2)\n", body)
	}
	out.WaitFor(t, "400, more than one Host header (RFC 9112 section 3.2)")
}

// The server speaks HTTP/1: a request line that names another major
// version gets 505 (RFC 9110 section 15.6.6). The digits of a version are
// numbers, so HTTP/1.0 and HTTP/1.9 are both HTTP/1.
func TestServerAnswers505ToAnotherMajorVersion(t *testing.T) {
	addr, out := start(t, nil)
	for _, proto := range []string{"HTTP/0.9", "HTTP/2.0", "HTTP/9.9"} {
		resp, body, _ := booktest.Request(t, addr, "GET / "+proto+"\r\nHost: a\r\n\r\n")
		if assert.Equal(t, 505, resp.StatusCode, proto) {
			assert.Contains(t, body, proto)
		}
	}
	for _, proto := range []string{"HTTP/1.0", "HTTP/1.1", "HTTP/1.9"} {
		resp, _, _ := booktest.Request(t, addr, "GET / "+proto+"\r\nHost: a\r\n\r\n")
		assert.Equal(t, 200, resp.StatusCode, proto)
	}
	out.WaitFor(t, `505, unsupported HTTP version "HTTP/9.9"`)
}

// A refusal must reach the client even when the client has sent more than
// the server read: closing a socket that still holds unread bytes makes
// the kernel reset the connection (see booktest.RequestWhileSending). The
// client sends 64 KiB of header (the server stops at 8 KiB and answers
// 431), or a bad head with 64 KiB behind it (400).
func TestARefusalArrivesWhileTheClientIsStillSending(t *testing.T) {
	addr, _ := start(t, nil)
	for _, tt := range []struct {
		name, raw string
		status    int
		body      string
	}{
		{"431", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 64<<10), 431, "request head over 8192 bytes\n"},
		{"400", "GET / HTTP/1.1\r\nHost : a\r\n\r\n" + strings.Repeat("a", 64<<10), 400, "invalid header name \"Host \"\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := booktest.RequestWhileSending(t, addr, tt.raw)
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, tt.body, body)
		})
	}
}

// A client that sends an endless head gets 431 once it passes the limit,
// and the server's memory does not grow with what the client sends.
func TestServerAnswers431ToAHugeHeadWithFlatMemory(t *testing.T) {
	addr, out := start(t, nil)
	conn := booktest.Dial(t, addr)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	const flood = 64 << 20 // 64 MiB of header, sent while we wait for the answer
	sent := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(conn, io.LimitReader(io.MultiReader(strings.NewReader("GET / HTTP/1.1\r\nX: "), neverEnding('a')), flood))
		sent <- n
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	assert.Equal(t, 431, resp.StatusCode)
	conn.Close()
	n := <-sent
	runtime.ReadMemStats(&after)

	out.WaitFor(t, "431, request head over 8192 bytes")
	assert.Less(t, n, int64(flood), "the server hung up before the flood ended")
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20),
		"the server allocated more than 1 MiB while the client sent %d bytes", n)
}

// A client that sends half a head and stops is dropped after the timeout,
// and other clients are served meanwhile.
func TestAStalledClientIsDroppedAndBlocksNobody(t *testing.T) {
	addr, out := start(t, func(s *server) { s.headTimeout = 500 * time.Millisecond })
	stalled := booktest.Dial(t, addr)
	_, err := io.WriteString(stalled, "GET / HTTP/1.1\r\nHost: ")
	require.NoError(t, err)

	started := time.Now()
	resp, _, _ := booktest.Request(t, addr, "GET / HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Less(t, time.Since(started), 400*time.Millisecond, "the second client waited for the first")

	_, err = stalled.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the server closed the stalled connection")
	assert.GreaterOrEqual(t, time.Since(started), 400*time.Millisecond)
	out.WaitFor(t, "no complete request head: read tcp")
	out.WaitFor(t, "i/o timeout")
}

func TestAcceptKey(t *testing.T) {
	tests := []struct{ name, key, accept string }{
		// RFC 6455 section 1.3.
		{"RFC 6455 example", "dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
		// The study note's request; accept computed with
		// printf '%s' KEY258EAFA5-E914-47DA-95CA-C5AB0DC85B11 | openssl sha1 -binary | base64
		{"the study note's key", "6ZCfv6CkFfxlP1ALZM7koQ==", "L20MgGk7EWIknfryFLsoBIZFu+I="},
		{"Chromium's key", "XsHZY8QPU4vSCuJAE8N/dw==", "FuIzEIaX41n4Sqt26peZ9qt1m+A="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.accept, acceptKey(tt.key))
		})
	}
}

// upgradeRequest builds a valid handshake request, then lets a test break it:
// set a header to a new value, or delete it with "".
func upgradeRequest(method string, changes ...string) string {
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

func TestCheckUpgradeAccepts(t *testing.T) {
	for name, raw := range map[string]string{
		"RFC 6455 section 1.2 request": rfcRequest,
		"Chromium's request":           booktest.ChromiumUpgrade,
		"Connection with keep-alive":   upgradeRequest("GET", "Connection", "keep-alive, Upgrade"),
		"values in any case":           upgradeRequest("GET", "Connection", "UPGRADE", "Upgrade", "WebSocket"),
		"names in any case": "GET /ws HTTP/1.1\r\nhost: a\r\nUPGRADE: websocket\r\nconnection: Upgrade\r\n" +
			"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n",
		"Upgrade as a list": upgradeRequest("GET", "Upgrade", "foo/2, websocket"),
		"Content-Length: 0": upgradeRequest("GET", "Content-Length", "0"),
	} {
		t.Run(name, func(t *testing.T) {
			req, err := parseHead([]byte(raw))
			require.NoError(t, err)
			assert.Nil(t, checkUpgrade(req))
		})
	}
}

func TestCheckUpgradeRefuses(t *testing.T) {
	tests := []struct {
		name, raw, status, header, reason string
	}{
		{"POST", upgradeRequest("POST"), "405 Method Not Allowed", "Allow: GET", "must be a GET request"},
		{"a chunked body", upgradeRequest("GET", "Transfer-Encoding", "chunked"), "400 Bad Request", "", `must not have a body (a GET body has no defined meaning, RFC 9110 section 9.3.1), but it has "Transfer-Encoding: chunked"`},
		{"a body of 5 bytes", upgradeRequest("GET", "Content-Length", "5"), "400 Bad Request", "", `must not have a body (a GET body has no defined meaning, RFC 9110 section 9.3.1), but it has "Content-Length: 5"`},
		{"HTTP/1.0", strings.Replace(upgradeRequest("GET"), "HTTP/1.1", "HTTP/1.0", 1), "400 Bad Request", "", "HTTP/1.1 or higher"},
		{"no Host", upgradeRequest("GET", "Host", ""), "400 Bad Request", "", "missing Host"},
		{"no Upgrade", upgradeRequest("GET", "Upgrade", ""), "400 Bad Request", "", `missing "Upgrade: websocket"`},
		{"Upgrade: h2c", upgradeRequest("GET", "Upgrade", "h2c"), "400 Bad Request", "", `missing "Upgrade: websocket"`},
		{"no Connection", upgradeRequest("GET", "Connection", ""), "400 Bad Request", "", `must include "Upgrade"`},
		{"Connection: keep-alive", upgradeRequest("GET", "Connection", "keep-alive"), "400 Bad Request", "", `must include "Upgrade"`},
		{"no version", upgradeRequest("GET", "Sec-WebSocket-Version", ""), "426 Upgrade Required", "Sec-WebSocket-Version: 13", `unsupported Sec-WebSocket-Version ""`},
		{"version 8", upgradeRequest("GET", "Sec-WebSocket-Version", "8"), "426 Upgrade Required", "Sec-WebSocket-Version: 13", `unsupported Sec-WebSocket-Version "8"`},
		{"no key", upgradeRequest("GET", "Sec-WebSocket-Key", ""), "400 Bad Request", "", `Sec-WebSocket-Key "" is not 16 bytes`},
		{"key not base64", upgradeRequest("GET", "Sec-WebSocket-Key", "not base64!"), "400 Bad Request", "", "is not 16 bytes in base64"},
		{"key of 15 bytes", upgradeRequest("GET", "Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"), "400 Bad Request", "", "is not 16 bytes in base64"},
		{"key of 17 bytes", upgradeRequest("GET", "Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA="), "400 Bad Request", "", "is not 16 bytes in base64"},
		{"two keys", upgradeRequest("GET", "sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA=="), "400 Bad Request", "", "is not 16 bytes in base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := parseHead([]byte(tt.raw))
			require.NoError(t, err)
			r := checkUpgrade(req)
			require.NotNil(t, r, "accepted:\n%s", tt.raw)
			assert.Equal(t, tt.status, r.status)
			assert.Contains(t, r.reason, tt.reason)
			if tt.header != "" {
				assert.Equal(t, []string{tt.header}, r.header)
			}
		})
	}
}

func TestServerRefusesOverTheWire(t *testing.T) {
	addr, out := start(t, nil)

	resp, body, _ := booktest.Request(t, addr, upgradeRequest("GET", "Sec-WebSocket-Version", "8"))
	assert.Equal(t, 426, resp.StatusCode)
	assert.Equal(t, "13", resp.Header.Get("Sec-WebSocket-Version"))
	assert.Contains(t, body, `unsupported Sec-WebSocket-Version "8"`)

	resp, _, _ = booktest.Request(t, addr, upgradeRequest("PUT"))
	assert.Equal(t, 405, resp.StatusCode)
	assert.Equal(t, "GET", resp.Header.Get("Allow"))

	resp, body, _ = booktest.Request(t, addr, upgradeRequest("GET", "Sec-WebSocket-Key", ""))
	assert.Equal(t, 400, resp.StatusCode)
	assert.Contains(t, body, "Sec-WebSocket-Key")

	resp, body, _ = booktest.Request(t, addr, upgradeRequest("GET", "host", "example.com"))
	assert.Equal(t, 400, resp.StatusCode, "two Host fields")
	assert.Contains(t, body, "more than one Host header")

	resp, _, _ = booktest.Request(t, addr, strings.Replace(upgradeRequest("GET"), "HTTP/1.1", "HTTP/9.9", 1))
	assert.Equal(t, 505, resp.StatusCode, "HTTP/9.9 is not HTTP/1.1 or higher")

	out.WaitFor(t, `426 Upgrade Required, unsupported Sec-WebSocket-Version "8"`)
}

// The opening handshake is a GET (RFC 6455 section 4.1), and a GET's body
// has no defined meaning (RFC 9110 section 9.3.1). A body announced by
// Transfer-Encoding or Content-Length is refused: after a 101 its bytes
// would be read as WebSocket frames. The body is 64 KiB, more than the
// server reads, and the refusal must still arrive whole.
func TestAHandshakeWithABodyIsRefused(t *testing.T) {
	addr, out := start(t, nil)
	body := strings.Repeat("a", 64<<10)
	for _, raw := range []string{
		upgradeRequest("GET", "Transfer-Encoding", "chunked") + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body),
		upgradeRequest("GET", "Content-Length", fmt.Sprint(len(body))) + body,
	} {
		resp, reason, _ := booktest.Request(t, addr, raw)
		assert.Equal(t, 400, resp.StatusCode)
		assert.Contains(t, reason, "the opening handshake must not have a body")
	}
	out.WaitFor(t, `400 Bad Request, the opening handshake must not have a body (a GET body has no defined meaning, RFC 9110 section 9.3.1), but it has "Content-Length: 65536"`)
}

// readServerFrame reads one frame from the server, the way RFC 6455
// section 5.2 lays it out: unmasked, as a server must send it.
func readServerFrame(t *testing.T, r io.Reader) (fin bool, opcode byte, payload []byte) {
	t.Helper()
	head := make([]byte, 2)
	_, err := io.ReadFull(r, head)
	require.NoError(t, err)
	require.Zero(t, head[1]&0x80, "a server frame must not be masked")
	length := uint64(head[1] & 0x7F)
	switch length {
	case 126:
		ext := make([]byte, 2)
		_, err = io.ReadFull(r, ext)
		length = uint64(ext[0])<<8 | uint64(ext[1])
	case 127:
		ext := make([]byte, 8)
		_, err = io.ReadFull(r, ext)
		length = 0
		for _, b := range ext {
			length = length<<8 | uint64(b)
		}
	}
	require.NoError(t, err)
	payload = make([]byte, length)
	_, err = io.ReadFull(r, payload)
	require.NoError(t, err)
	return head[0]&0x80 != 0, head[0] & 0x0F, payload
}

func TestEchoOverTheWire(t *testing.T) {
	addr, out := start(t, nil)
	resp, _, conn := booktest.Request(t, addr, booktest.ChromiumUpgrade)
	require.Equal(t, 101, resp.StatusCode)

	_, err := conn.Write(rfcMaskedHello)
	require.NoError(t, err)
	reply := make([]byte, len(rfcUnmaskedHello))
	_, err = io.ReadFull(conn.R, reply)
	require.NoError(t, err)
	assert.Equal(t, rfcUnmaskedHello, reply, "RFC 6455 section 5.7's unmasked Hello")

	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 20} {
		for _, opcode := range []byte{opText, opBinary} {
			payload := textPayload(n)
			_, err := conn.Write(clientFrame(0x80|opcode, payload, testKey))
			require.NoError(t, err)
			fin, op, got := readServerFrame(t, conn.R)
			assert.True(t, fin)
			assert.Equal(t, opcode, op)
			assert.True(t, bytes.Equal(payload, got), "%d bytes", n)
		}
	}
	out.WaitFor(t, "bytes in 1 frame(s), echoed")
}

func TestFragmentsAreEchoedAsTheyCame(t *testing.T) {
	addr, _ := start(t, nil)
	_, _, conn := booktest.Request(t, addr, booktest.ChromiumUpgrade)
	_, err := conn.Write(append(clientFrame(0x01, []byte("Hel"), testKey), clientFrame(0x80, []byte("lo"), testKey)...))
	require.NoError(t, err)
	want := []byte{0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f} // RFC 6455 section 5.7
	got := make([]byte, len(want))
	_, err = io.ReadFull(conn.R, got)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestACloseFrameIsAnsweredThenTheConnectionEnds(t *testing.T) {
	addr, out := start(t, nil)
	_, _, conn := booktest.Request(t, addr, booktest.ChromiumUpgrade)
	_, err := conn.Write(clientFrame(0x88, []byte{0x03, 0xE8}, testKey)) // close, status 1000
	require.NoError(t, err)
	fin, op, payload := readServerFrame(t, conn.R)
	assert.True(t, fin)
	assert.Equal(t, byte(opClose), op)
	assert.Equal(t, []byte{0x03, 0xE8}, payload)
	_, err = conn.R.ReadByte()
	assert.ErrorIs(t, err, io.EOF)
	out.WaitFor(t, "close frame answered: hanging up")
}

func TestARefusedFrameEndsTheConnection(t *testing.T) {
	addr, out := start(t, nil)
	_, _, conn := booktest.Request(t, addr, booktest.ChromiumUpgrade)
	_, err := conn.Write(rfcUnmaskedHello)
	require.NoError(t, err)
	_, err = conn.R.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "the server hung up")
	out.WaitFor(t, "connection over: client frame not masked (RFC 6455 section 5.1)")
}

func TestInspectorShowsTheLastFrame(t *testing.T) {
	addr, _ := start(t, nil)
	_, _, conn := booktest.Request(t, addr, strings.Replace(booktest.ChromiumUpgrade, "GET /ws ", "GET /ws?inspect=abc ", 1))
	_, err := conn.Write(rfcMaskedHello)
	require.NoError(t, err)
	readServerFrame(t, conn.R)

	resp, body, _ := booktest.Request(t, addr, "GET /inspect?token=abc HTTP/1.1\r\nHost: x\r\n\r\n")
	require.Equal(t, 200, resp.StatusCode)
	assert.JSONEq(t, `{
		"received": {"header": "81 85 37 fa 21 3d", "wire": "7f 9f 4d 51 58", "payload": "48 65 6c 6c 6f", "length": 5},
		"reply":    {"header": "81 05", "payload": "48 65 6c 6c 6f", "length": 5}
	}`, body)

	resp, _, _ = booktest.Request(t, addr, "GET /inspect?token=other HTTP/1.1\r\nHost: x\r\n\r\n")
	assert.Equal(t, 404, resp.StatusCode)

	conn.Close()
	assert.Eventually(t, func() bool {
		resp, _, _ := booktest.Request(t, addr, "GET /inspect?token=abc HTTP/1.1\r\nHost: x\r\n\r\n")
		return resp.StatusCode == 404
	}, 5*time.Second, 10*time.Millisecond, "the inspection is forgotten with its connection")
}

// hugeFrameHeader is the 14-byte header of a masked binary frame that
// declares n bytes of payload, in the 64-bit form, with testKey as its key.
func hugeFrameHeader(n uint64) []byte {
	return append(binary.BigEndian.AppendUint64([]byte{0x82, 0xFF}, n), testKey[:]...)
}

// waitForCount waits until the server has printed want n times.
func waitForCount(t *testing.T, out *booktest.Output, want string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Count(out.String(), want) >= n },
		time.Minute, 20*time.Millisecond, "the server printed %q fewer than %d times", want, n)
}

// A client may declare 16 MiB and send one byte. The server's memory must
// follow the bytes that arrive, not the lengths clients declare: 50 such
// clients must not cost 50 times 16 MiB.
func TestDeclaredButUnsentPayloadsCostLittleMemory(t *testing.T) {
	addr, out := start(t, nil)
	const clients = 50
	conns := make([]*booktest.Conn, clients)
	for i := range conns {
		_, _, conns[i] = booktest.Request(t, addr, booktest.ChromiumUpgrade)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, conn := range conns {
		_, err := conn.Write(append(hugeFrameHeader(16<<20), 0xAB))
		require.NoError(t, err)
		conn.Close()
	}
	waitForCount(t, out, "connection over: unexpected EOF", clients)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d clients declared 16 MiB each and sent 1 byte: %d KiB allocated", clients, allocated>>10)
	assert.Less(t, allocated, uint64(8<<20), "the server allocated for what was declared, not for what arrived")
}

// A connection that once received a 16 MiB frame must not hold 16 MiB for
// the rest of its life. Several clients each send one, then stay open and
// quiet; once the server has handled the frames, its heap is back near
// where it started.
func TestAHugeFrameIsNotKeptAfterwards(t *testing.T) {
	addr, out := start(t, nil)
	const clients, size = 8, 16 << 20
	conns := make([]*booktest.Conn, clients)
	for i := range conns {
		_, _, conns[i] = booktest.Request(t, addr, booktest.ChromiumUpgrade)
		conns[i].SetDeadline(time.Now().Add(time.Minute)) // 16 MiB each, maybe under -race
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	zeros := bytes.Repeat(testKey[:], 16<<10) // 64 KiB of zero bytes, masked with testKey
	for _, conn := range conns {
		_, err := conn.Write(hugeFrameHeader(size))
		require.NoError(t, err)
		for range size / len(zeros) {
			_, err := conn.Write(zeros)
			require.NoError(t, err)
		}
		_, err = io.CopyN(io.Discard, conn.R, 10+size) // the echo
		require.NoError(t, err)
	}
	waitForCount(t, out, "message: binary, 16777216 bytes in 1 frame(s)", clients)

	var held int64
	assert.Eventually(t, func() bool {
		var now runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&now)
		held = int64(now.HeapAlloc) - int64(before.HeapAlloc)
		return held < 8<<20
	}, 5*time.Second, 100*time.Millisecond, "")
	t.Logf("%d connections, each after a 16 MiB frame, hold %d KiB", clients, held/1024)
	assert.Less(t, held, int64(8<<20), "the connections kept their buffers")
}

// The docs show the terminal for RFC 6455 section 5.7's Hello, its echo,
// and a close.
func TestTranscripts(t *testing.T) {
	for name, wire := range map[string][]byte{
		"05 hello-echo": rfcMaskedHello,
		"05 close":      clientFrame(0x88, []byte{0x03, 0xE8}, testKey),
	} {
		addr, out := start(t, nil)
		_, _, conn := booktest.Request(t, addr, booktest.ChromiumUpgrade)
		_, err := conn.Write(wire)
		require.NoError(t, err)
		readServerFrame(t, conn.R)
		conn.Close()
		last := "connection over"
		if name == "05 close" {
			last = "hanging up"
		}
		got := out.WaitFor(t, last)
		got = got[strings.Index(got, ": 101 Switching Protocols"):]
		got = got[strings.Index(got, "\n\n")+2:]
		got = strings.ReplaceAll(got, conn.LocalAddr().String(), "127.0.0.1:51234")
		booktest.Transcript(t, "docs/05-send-frames.md", name, got)
	}
}

// The page's payloads, rebuilt in Go from the rule the page states.
func textPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	return p
}

func binaryPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(7*i + 3)
	}
	return p
}

func TestBrowserGetsEveryBoundaryBackAndInspectsIt(t *testing.T) {
	addr, out := start(t, nil)
	ctx := booktest.Browser(t)

	booktest.Do(t, ctx, chromedp.Navigate("http://"+addr+"/"))
	booktest.WaitForText(t, ctx, "#state", "OPEN")

	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 20} {
		for _, kind := range []string{"text", "binary"} {
			booktest.Do(t, ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf("#%s-%d", kind, n))))
			// The page compares the echo with what it sent, byte by byte...
			booktest.WaitForText(t, ctx, "#log", fmt.Sprintf("echo %s %d B: identical", kind, n))
			// ...and the server decoded a message of that size.
			out.WaitFor(t, fmt.Sprintf("message: %s, %d bytes in ", kind, n))
		}
	}
	assert.NotContains(t, booktest.Text(t, ctx, "#log"), "DIFFERENT")

	booktest.Do(t, ctx,
		chromedp.SetValue(chromedp.CSS("#msg"), "Hello"),
		chromedp.Click(chromedp.CSS("#send")),
	)
	booktest.WaitForText(t, ctx, "#log", "echo text 5 B: identical")
	booktest.WaitForText(t, ctx, "#inspector", "48 65 6c 6c 6f")
	inspector := booktest.Text(t, ctx, "#inspector")
	for _, want := range []string{
		"browser → server", "10000001\tFIN=1 RSV=0 opcode=1 (text)", "10000101\tMASK=1 length=5", "mask key",
		"server → browser", "00000101\tMASK=0 length=5", "never masked",
	} {
		assert.Contains(t, inspector, want)
	}
	booktest.Screenshot(t, ctx, "05-send-frames")
}

func lengthForm(n int) string {
	switch {
	case n <= 125:
		return "7-bit"
	case n <= 65535:
		return "16-bit"
	}
	return "64-bit"
}

func FuzzParseHead(f *testing.F) {
	f.Add([]byte(rfcRequest))
	f.Add([]byte(booktest.ChromiumUpgrade))
	f.Add([]byte("GET / HTTP/1.1\nHost: a\n\n"))
	f.Add([]byte("GET / HTTP/1.1\r\n b\r\n\r\n"))
	f.Fuzz(func(t *testing.T, head []byte) {
		req, err := parseHead(head)
		if err != nil {
			return
		}
		// Whatever it accepts must be what the grammar allows.
		if !isToken(req.method) || req.target == "" || strings.Contains(req.target, " ") || !isHTTPVersion(req.proto) {
			t.Fatalf("accepted a bad request line: %q %q %q", req.method, req.target, req.proto)
		}
		hosts := 0
		for _, f := range req.fields {
			if !isToken(f.name) || strings.ContainsFunc(f.value, isControl) {
				t.Fatalf("accepted a bad field %q: %q", f.name, f.value)
			}
			if strings.EqualFold(f.name, "Host") {
				hosts++
			}
		}
		if req.major != 1 || hosts > 1 {
			t.Fatalf("accepted %s with %d Host fields", req.proto, hosts)
		}
	})
}

func FuzzReadHead(f *testing.F) {
	f.Add([]byte(rfcRequest), 64)
	f.Add([]byte("a\n\n"), 3)
	f.Fuzz(func(t *testing.T, stream []byte, bufSize int) {
		const limit = 1024
		r := bufio.NewReaderSize(iotest.OneByteReader(bytesReader(stream)), 16+bufSize%64)
		head, err := readHead(r, limit)
		if err != nil {
			return
		}
		if len(head) > limit || !strings.HasSuffix(string(head), "\n") {
			t.Fatalf("readHead returned %d bytes ending %q", len(head), head[max(0, len(head)-4):])
		}
	})
}

func bytesReader(b []byte) io.Reader { return strings.NewReader(string(b)) }
