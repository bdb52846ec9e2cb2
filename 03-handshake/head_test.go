package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

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
		{"escape in the target", "GET /\x1b[2J HTTP/1.1\r\nHost: a\r\n\r\n", `request target "/\x1b[2J" holds a character that is not visible ASCII`},
		{"tab in the target", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", "not visible ASCII"},
		{"UTF-8 in the target", "GET /é HTTP/1.1\r\nHost: a\r\n\r\n", "not visible ASCII"},
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
	endless := io.MultiReader(strings.NewReader("GET / HTTP/1.1\r\n"), booktest.NeverEnding('a'))
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
		n, _ := io.Copy(conn, io.LimitReader(io.MultiReader(strings.NewReader("GET / HTTP/1.1\r\nX: "), booktest.NeverEnding('a')), flood))
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
		r := bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(stream)), 16+bufSize%64)
		head, err := readHead(r, limit)
		if err != nil {
			return
		}
		if len(head) > limit || !strings.HasSuffix(string(head), "\n") {
			t.Fatalf("readHead returned %d bytes ending %q", len(head), head[max(0, len(head)-4):])
		}
	})
}
