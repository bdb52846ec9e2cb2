package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

// start runs the chapter's server for one test; change, if given, adjusts
// its settings first.
func start(t *testing.T, change func(*server)) (string, *booktest.Output) {
	return booktest.Start(t, newServer, (*server).serve, change)
}

// The docs show the table the terminal prints for Chromium's upgrade request.
func TestTranscriptOfTheUpgradeTable(t *testing.T) {
	addr, out := start(t, nil)
	conn := booktest.Dial(t, addr)
	_, err := io.WriteString(conn, booktest.ChromiumUpgrade)
	require.NoError(t, err)
	got := out.WaitFor(t, "sec-websocket-version")
	got = strings.ReplaceAll(got, conn.LocalAddr().String(), "127.0.0.1:51234")
	booktest.Transcript(t, "docs/02-parse-headers.md", "02 upgrade-table", got)
}

func TestBrowserRequestIsParsedIntoATable(t *testing.T) {
	addr, out := start(t, nil)
	ctx := booktest.Browser(t)

	booktest.Do(t, ctx, chromedp.Navigate("http://"+addr+"/"))
	booktest.WaitForText(t, ctx, "#log", "close: code 1006")

	got := out.WaitFor(t, "GET /ws HTTP/1.1\n")
	t.Logf("the server printed:\n%s", got)
	table := got[strings.Index(got, "GET /ws HTTP/1.1\n"):]
	for _, line := range []string{
		"* Upgrade                    websocket\n",
		"* Connection                 Upgrade\n",
		"* Sec-WebSocket-Version      13\n",
		"* Sec-WebSocket-Key          ",
		"  Origin                     http://" + addr + "\n",
		`  sec-websocket-version      "13"`,
	} {
		assert.Contains(t, table, line)
	}
	booktest.Screenshot(t, ctx, "02-parse-headers")
}

// serve goes on after Accept fails, as it does when the process is out of
// file descriptors, and serves at most maxConns connections at once: the
// next client waits until one of them leaves.
func TestServeOutlivesAcceptErrorsAndCapsConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var out booktest.Output
	s := newServer(&out)
	s.maxConns = 2
	go s.serve(&booktest.FailingListener{Listener: ln, Failures: 1})
	addr := ln.Addr().String()

	first := booktest.Dial(t, addr) // the two slots taken by clients that send nothing
	booktest.Dial(t, addr)
	third := booktest.Dial(t, addr)
	_, err = third.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	third.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	_, err = third.Read(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "a third client was served while two held the slots")

	first.Close()
	third.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	require.NoError(t, err, "the third client is served once the first leaves")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, out.String(), "accept failed: accept tcp: too many open files; trying again in a second")
}
