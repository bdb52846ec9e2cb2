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
			payload := booktest.TextPayload(n)
			_, err := conn.Write(booktest.ClientFrame(0x80|opcode, payload, testKey))
			require.NoError(t, err)
			f := booktest.ReadServerFrame(t, conn.R)
			assert.True(t, f.Fin)
			assert.Equal(t, opcode, f.Opcode)
			assert.True(t, bytes.Equal(payload, f.Payload), "%d bytes", n)
		}
	}
	out.WaitFor(t, "bytes in 1 frame(s), echoed")
}

func TestFragmentsAreEchoedAsTheyCame(t *testing.T) {
	addr, _ := start(t, nil)
	_, _, conn := booktest.Request(t, addr, booktest.ChromiumUpgrade)
	_, err := conn.Write(append(booktest.ClientFrame(0x01, []byte("Hel"), testKey), booktest.ClientFrame(0x80, []byte("lo"), testKey)...))
	require.NoError(t, err)
	want := []byte{0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f} // RFC 6455 section 5.7
	got := make([]byte, len(want))
	_, err = io.ReadFull(conn.R, got)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestACloseFrameIsAnsweredThenTheConnectionEnds(t *testing.T) {
	addr, out := start(t, nil)
	for _, tt := range []struct {
		name        string
		payload     []byte
		after       []byte // what the client sends after its close frame
		wantPayload []byte
	}{
		{"status 1000", []byte{0x03, 0xE8}, nil, []byte{0x03, 0xE8}},
		{"status and reason: the reason stays behind", []byte{0x03, 0xE8, 'b', 'y', 'e'}, nil, []byte{0x03, 0xE8}},
		{"1 byte, too short for a status", []byte{0x03}, nil, []byte{}},
		{"no payload", nil, nil, []byte{}},
		{"then 100 KiB more: the close frame still arrives", []byte{0x03, 0xE8}, make([]byte, 100<<10), []byte{0x03, 0xE8}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, conn := booktest.Request(t, addr, booktest.ChromiumUpgrade)
			_, err := conn.Write(append(booktest.ClientFrame(0x88, tt.payload, testKey), tt.after...))
			require.NoError(t, err)
			f := booktest.ReadServerFrame(t, conn.R)
			assert.True(t, f.Fin)
			assert.Equal(t, byte(opClose), f.Opcode)
			assert.Equal(t, tt.wantPayload, f.Payload)
			_, err = conn.R.ReadByte()
			assert.ErrorIs(t, err, io.EOF, "the server hangs up after its close frame")
		})
	}
	out.WaitFor(t, "close frame answered: hanging up")
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
		_, err = io.CopyN(io.Discard, conn.R, 10+size) // the echo
		require.NoError(t, err)
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

// The docs show the terminal for RFC 6455 section 5.7's Hello, its echo,
// and a close.
func TestTranscripts(t *testing.T) {
	for name, wire := range map[string][]byte{
		"05 hello-echo": rfcMaskedHello,
		"05 close":      booktest.ClientFrame(0x88, []byte{0x03, 0xE8}, testKey),
	} {
		addr, out := start(t, nil)
		_, _, conn := booktest.Request(t, addr, booktest.ChromiumUpgrade)
		_, err := conn.Write(wire)
		require.NoError(t, err)
		booktest.ReadServerFrame(t, conn.R)
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
