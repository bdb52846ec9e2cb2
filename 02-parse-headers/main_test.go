package main

import (
	"io"
	"strings"
	"testing"

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
