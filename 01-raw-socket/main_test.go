package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

func TestVisibleShowsEveryByte(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"crlf line", "GET / HTTP/1.1\r\n", "GET / HTTP/1.1\\r\\n\n"},
		{"blank line ends the head", "\r\n", "\\r\\n\n"},
		{"bare LF", "a\nb", "a\\n\nb"},
		{"tab and NUL", "a\tb\x00", `a\x09b\x00`},
		{"non-ASCII bytes", "é", `\xc3\xa9`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, visible([]byte(tt.in)))
		})
	}
}

func TestServesThePageAtRoot(t *testing.T) {
	addr, out := booktest.Serve(t, serve)
	resp, body, _ := booktest.Request(t, addr, "GET / HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")

	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Equal(t, string(page), body)
	out.WaitFor(t, `GET / HTTP/1.1\r\n`+"\n"+`Host: `+addr+`\r\n`+"\n"+`\r\n`+"\n")
}

func TestEverythingElseIs404(t *testing.T) {
	addr, _ := booktest.Serve(t, serve)
	for _, target := range []string{"/ws", "/favicon.ico", "/index.html"} {
		resp, _, _ := booktest.Request(t, addr, "GET "+target+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
		assert.Equal(t, 404, resp.StatusCode, target)
	}
}

// The docs show what the terminal prints for that request.
func TestTranscriptOfAnUpgradeRequest(t *testing.T) {
	addr, out := booktest.Serve(t, serve)
	conn := booktest.Dial(t, addr)
	_, err := io.WriteString(conn, booktest.ChromiumUpgrade)
	require.NoError(t, err)
	got := out.WaitFor(t, "permessage-deflate; client_max_window_bits\\r\\n\n\\r\\n\n")
	got = strings.ReplaceAll(got, conn.LocalAddr().String(), "127.0.0.1:51234")
	booktest.Transcript(t, "docs/01-raw-socket.md", "01 upgrade-request", got)
}

func TestBrowserShowsTheUpgradeRequest(t *testing.T) {
	addr, out := booktest.Serve(t, serve)
	ctx := booktest.Browser(t)

	booktest.Do(t, ctx, chromedp.Navigate("http://"+addr+"/"))
	booktest.WaitForText(t, ctx, "#log", "close: code 1006")
	booktest.WaitForText(t, ctx, "#state", "CLOSED")

	got := out.WaitFor(t, `GET /ws HTTP/1.1\r\n`)
	t.Logf("the server printed:\n%s", got)
	upgrade := got[strings.Index(got, `GET /ws HTTP/1.1\r\n`):]
	for _, line := range []string{
		`Upgrade: websocket\r\n`,
		`Connection: Upgrade\r\n`,
		`Sec-WebSocket-Version: 13\r\n`,
		`Sec-WebSocket-Key: `,
		`Origin: http://` + addr + `\r\n`,
	} {
		assert.Contains(t, upgrade, line)
	}
	booktest.Screenshot(t, ctx, "01-raw-socket")
}

// serve goes on after Accept fails, as it does when the process is out of
// file descriptors.
func TestServeOutlivesAcceptErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var out booktest.Output
	go serve(&booktest.FailingListener{Listener: ln, Failures: 1}, &out)

	conn := booktest.Dial(t, ln.Addr().String())
	_, err = conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "the client is served after the failed Accept")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, out.String(), "accept failed: accept tcp: too many open files; trying again in a second")
}
