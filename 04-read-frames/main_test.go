package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
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

func TestHandshakeThenFrames(t *testing.T) {
	addr, out := start(t, nil)
	resp, _, conn := booktest.Request(t, addr, booktest.ChromiumUpgrade)
	require.Equal(t, 101, resp.StatusCode)

	_, err := conn.Write(bytes.Join([][]byte{rfcMaskedHello, booktest.ClientFrame(0x82, make([]byte, 256), testKey)}, nil))
	require.NoError(t, err)
	out.WaitFor(t, `unmasked     "Hello"`)
	out.WaitFor(t, "frame 2, 264 bytes on the wire")
	out.WaitFor(t, "length=256 (16-bit form, for 126 to 65535 bytes)")
}

func TestACloseFrameEndsTheConnection(t *testing.T) {
	addr, out := start(t, nil)
	_, _, conn := booktest.Request(t, addr, booktest.ChromiumUpgrade)
	_, err := conn.Write(booktest.ClientFrame(0x88, []byte{0x03, 0xE8}, testKey)) // close, status 1000
	require.NoError(t, err)
	_, err = conn.R.ReadByte()
	assert.ErrorIs(t, err, io.EOF)
	out.WaitFor(t, "close frame received: hanging up")
}

// A connection that once received a frame as large as the limit must not
// hold it for the rest of its life. Many clients each send one, then stay
// open and quiet; once the server has handled the frames, its heap is back
// near where it started.
func TestAHugeFrameIsNotKeptAfterwards(t *testing.T) {
	addr, out := start(t, nil)
	const clients, size = 32, 1 << 20 // the limit
	conns := make([]*booktest.Conn, clients)
	for i := range conns {
		_, _, conns[i] = booktest.Request(t, addr, booktest.ChromiumUpgrade)
		conns[i].SetDeadline(time.Now().Add(time.Minute)) // 1 MiB each, maybe under -race
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	zeros := bytes.Repeat(testKey[:], 16<<10) // 64 KiB of zero bytes, masked with testKey
	for _, conn := range conns {
		_, err := conn.Write(booktest.ClientFrameHeader(0x82, size, testKey))
		require.NoError(t, err)
		for range size / len(zeros) {
			_, err := conn.Write(zeros)
			require.NoError(t, err)
		}
	}
	out.WaitForCount(t, "message: binary, 1048576 bytes in 1 frame(s)", clients)

	var held int64
	assert.Eventually(t, func() bool {
		var now runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&now)
		held = int64(now.HeapAlloc) - int64(before.HeapAlloc)
		return held < 8<<20
	}, 5*time.Second, 100*time.Millisecond, "")
	t.Logf("%d connections, each after a 1 MiB frame, hold %d KiB", clients, held/1024)
	assert.Less(t, held, int64(8<<20), "the connections kept their buffers")
}

// The docs show the dissection of RFC 6455 section 5.7's frames, each
// length form, and a refusal.
func TestTranscripts(t *testing.T) {
	payload256 := make([]byte, 256)
	for i := range payload256 {
		payload256[i] = byte(i)
	}
	for name, wire := range map[string][]byte{
		"04 rfc-hello":  rfcMaskedHello,
		"04 16-bit":     booktest.ClientFrame(0x82, payload256, testKey),
		"04 64-bit":     booktest.ClientFrame(0x81, booktest.TextPayload(65536), testKey),
		"04 close":      booktest.ClientFrame(0x88, []byte{0x03, 0xE8}, testKey),
		"04 unmasked":   rfcUnmaskedHello,
		"04 over-limit": {0x82, 0xFF, 0, 0, 0x01, 0, 0, 0, 0, 0},
	} {
		addr, out := start(t, nil)
		_, _, conn := booktest.Request(t, addr, booktest.ChromiumUpgrade)
		_, err := conn.Write(wire)
		require.NoError(t, err)
		last := "connection over"
		if name == "04 close" {
			last = "hanging up"
		}
		conn.Close()
		got := out.WaitFor(t, last)
		got = got[strings.Index(got, ": 101 Switching Protocols"):]
		got = got[strings.Index(got, "\n\n")+2:]
		got = strings.ReplaceAll(got, conn.LocalAddr().String(), "127.0.0.1:51234")
		booktest.Transcript(t, "docs/04-read-frames.md", name, got)
	}
}

func TestBrowserSendsEveryBoundaryAndTheServerDecodesIt(t *testing.T) {
	addr, out := start(t, nil)
	ctx := booktest.Browser(t)

	booktest.Do(t, ctx, chromedp.Navigate("http://"+addr+"/"))
	booktest.WaitForText(t, ctx, "#state", "OPEN")

	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 20} {
		for _, kind := range []string{"text", "binary"} {
			booktest.Do(t, ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf("#%s-%d", kind, n))))
			// What the terminal must show unmasked: the start of the payload
			// the page built (the same rule as booktest's payloads).
			opcode, payload := "opcode=0x1 (text)", booktest.TextPayload(n)
			unmasked := fmt.Sprintf("unmasked     %q", payload[:min(n, 60)])
			if kind == "binary" {
				opcode, payload = "opcode=0x2 (binary)", booktest.BinaryPayload(n)
				unmasked = fmt.Sprintf("unmasked     % x", payload[:min(n, 16)])
			}
			booktest.WaitForText(t, ctx, "#log", fmt.Sprintf("sent %s %d B, %s length form", kind, n, lengthForm(n)))

			// The server's line for the whole message has its size.
			got := out.WaitFor(t, fmt.Sprintf("  message: %s, %d bytes in ", kind, n))
			message := got[strings.LastIndex(got, fmt.Sprintf("  message: %s, %d bytes in ", kind, n)):]
			message = message[:strings.Index(message, "\n")]

			// Up to 64 KiB Chromium sends one frame, in the form the page names.
			// A larger message it splits into several frames.
			if n <= 65536 {
				assert.Contains(t, message, " in 1 frame(s)")
				frame := got[strings.LastIndex(got, "frame "):]
				assert.Contains(t, frame, opcode)
				assert.Contains(t, frame, lengthForm(n)+" form")
				if n > 0 {
					assert.Contains(t, frame, unmasked, "the server unmasked other bytes than the page sent")
				}
			}
		}
	}
	booktest.Do(t, ctx,
		chromedp.SetValue(chromedp.CSS("#msg"), "Hello"),
		chromedp.Click(chromedp.CSS("#send")),
	)
	out.WaitFor(t, `unmasked     "Hello"`)
	booktest.Screenshot(t, ctx, "04-read-frames")
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
