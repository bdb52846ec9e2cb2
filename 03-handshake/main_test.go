package main

import (
	"bufio"
	"encoding/hex"
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

// rfcMaskedHello is the masked text frame "Hello" of RFC 6455 section 5.7.
var rfcMaskedHello = []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}

func TestHandshakeThenHexDump(t *testing.T) {
	addr, out := start(t, nil)
	resp, _, conn := booktest.Request(t, addr, booktest.ChromiumUpgrade)
	assert.Equal(t, 101, resp.StatusCode)
	assert.Equal(t, "websocket", resp.Header.Get("Upgrade"))
	assert.Equal(t, "Upgrade", resp.Header.Get("Connection"))
	assert.Equal(t, "FuIzEIaX41n4Sqt26peZ9qt1m+A=", resp.Header.Get("Sec-WebSocket-Accept"))

	_, err := conn.Write(rfcMaskedHello)
	require.NoError(t, err)
	got := out.WaitFor(t, "81 85 37 fa 21 3d 7f 9f  4d 51 58")
	assert.Contains(t, got, ": 11 bytes ---\n")
}

// The docs show the terminal for a handshake and one frame, and for each refusal.
func TestTranscripts(t *testing.T) {
	addr, out := start(t, nil)
	_, _, conn := booktest.Request(t, addr, booktest.ChromiumUpgrade)
	_, err := conn.Write(rfcMaskedHello)
	require.NoError(t, err)
	got := out.WaitFor(t, "|..7.!=..MQX|\n\n")
	got = got[strings.Index(got, "--- "+conn.LocalAddr().String()+": 101"):]
	got = strings.ReplaceAll(got, conn.LocalAddr().String(), "127.0.0.1:51234")
	booktest.Transcript(t, "docs/03-handshake.md", "03 handshake-and-frame", got)

	var lines []string
	for _, raw := range []string{
		booktest.UpgradeRequest("POST"),
		booktest.UpgradeRequest("GET", "Connection", "keep-alive"),
		booktest.UpgradeRequest("GET", "Sec-WebSocket-Version", "8"),
		booktest.UpgradeRequest("GET", "Sec-WebSocket-Key", "hello"),
	} {
		addr, out := start(t, nil)
		resp, _, conn := booktest.Request(t, addr, raw)
		got := out.WaitFor(t, resp.Status)
		line := got[strings.LastIndex(got, "--- "):]
		lines = append(lines, strings.ReplaceAll(strings.TrimSpace(line), conn.LocalAddr().String(), "127.0.0.1:51234"))
	}
	booktest.Transcript(t, "docs/03-handshake.md", "03 refusals", strings.Join(lines, "\n"))
}

func TestBrowserOpensAndTheServerDumpsAMaskedFrame(t *testing.T) {
	addr, out := start(t, nil)
	ctx := booktest.Browser(t)

	booktest.Do(t, ctx, chromedp.Navigate("http://"+addr+"/"))
	booktest.WaitForText(t, ctx, "#state", "OPEN")
	out.WaitFor(t, ": 101 Switching Protocols, Sec-WebSocket-Accept: ")

	const text = "hello, frames"
	booktest.Do(t, ctx,
		chromedp.SetValue(chromedp.CSS("#msg"), text),
		chromedp.Click(chromedp.CSS("#send")),
	)
	booktest.WaitForText(t, ctx, "#log", `sent "hello, frames": 13 bytes`)
	got := out.WaitFor(t, ": 19 bytes ---\n")

	// Read the frame back out of the hex dump and check it the way RFC 6455
	// section 5.2 describes: FIN + text opcode, mask bit + length 13, then a
	// 4-byte key that unmasks the payload to our text.
	dump := got[strings.Index(got, ": 19 bytes ---\n")+len(": 19 bytes ---\n"):]
	frame := bytesFromHexDump(t, dump)
	require.Len(t, frame, 19)
	assert.Equal(t, byte(0x81), frame[0], "FIN and opcode 1 (text)")
	assert.Equal(t, byte(0x80|13), frame[1], "MASK bit and a 7-bit length of 13")
	key, payload := frame[2:6], frame[6:]
	assert.NotEqual(t, text, string(payload), "the payload on the wire is masked")
	for i := range payload {
		payload[i] ^= key[i%4]
	}
	assert.Equal(t, text, string(payload))
	booktest.Screenshot(t, ctx, "03-handshake")
}

// bytesFromHexDump reads back the bytes of an encoding/hex Dump.
func bytesFromHexDump(t *testing.T, dump string) []byte {
	var out []byte
	for _, line := range strings.Split(dump, "\n") {
		if len(line) < 10 || line[8] != ' ' {
			break
		}
		hexPart, _, _ := strings.Cut(line[10:], "|")
		for _, h := range strings.Fields(hexPart) {
			b, err := hex.DecodeString(h)
			require.NoError(t, err)
			out = append(out, b...)
		}
	}
	return out
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
