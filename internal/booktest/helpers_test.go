package booktest

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUpgradeRequest(t *testing.T) {
	assert.Equal(t, "GET /ws HTTP/1.1\r\n"+
		"Host: 127.0.0.1:8002\r\n"+
		"Upgrade: websocket\r\n"+
		"Connection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"+
		"Sec-WebSocket-Version: 13\r\n"+
		"\r\n", UpgradeRequest("GET"))

	got := UpgradeRequest("POST", "Sec-WebSocket-Version", "8", "Host", "", "Origin", "http://a")
	assert.Equal(t, "POST /ws HTTP/1.1\r\n"+
		"Upgrade: websocket\r\n"+
		"Connection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"+
		"Sec-WebSocket-Version: 8\r\n"+
		"Origin: http://a\r\n"+
		"\r\n", got, "a value changed, a field deleted, one added")

	got = UpgradeRequest("GET", "sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA==")
	assert.Contains(t, got, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
	assert.True(t, strings.HasSuffix(got, "sec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n"), "a name in other case is another field")
}

// The payloads are the ones the pages build in JavaScript, and the pages
// still build them that way.
func TestPayloadsAreThePages(t *testing.T) {
	assert.Equal(t, "abcdefghijklmnopqrstuvwxyzab", string(TextPayload(28)))
	assert.Empty(t, TextPayload(0))
	binary := BinaryPayload(300)
	for i, want := range map[int]byte{0: 3, 1: 10, 36: 255, 37: 6, 299: byte((7*299 + 3) % 256)} {
		assert.Equal(t, want, binary[i], "byte %d", i)
	}

	root := RepoRoot(t)
	for _, chapter := range []string{"04-read-frames", "05-send-frames"} {
		page, err := os.ReadFile(filepath.Join(root, chapter, "index.html"))
		require.NoError(t, err)
		for _, line := range []string{
			`const textPayload = (n) => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + i % 26)).join("");`,
			`const binaryPayload = (n) => Uint8Array.from({ length: n }, (_, i) => (7 * i + 3) & 0xff);`,
		} {
			assert.Contains(t, string(page), line, "%s/index.html no longer builds its payloads as TextPayload and BinaryPayload do", chapter)
		}
	}
}

func TestNeverEndingNeverEnds(t *testing.T) {
	for _, size := range []int{1, 7, 64 << 10} {
		p := make([]byte, size)
		n, err := NeverEnding('a').Read(p)
		require.NoError(t, err)
		assert.Equal(t, size, n)
		assert.Equal(t, strings.Repeat("a", size), string(p))
	}
	n, err := io.Copy(io.Discard, io.LimitReader(NeverEnding('b'), 10<<20))
	require.NoError(t, err)
	assert.Equal(t, int64(10<<20), n)
}

func TestWaitForCount(t *testing.T) {
	out := &Output{}
	go func() {
		for range 5 {
			time.Sleep(5 * time.Millisecond)
			io.WriteString(out, "tick\n")
		}
	}()
	out.WaitForCount(t, "tick", 5)
	assert.Equal(t, 5, strings.Count(out.String(), "tick"))
}

// greeter is a server of the shape Start takes: made by a function of
// where it prints, served by a method.
type greeter struct {
	out      io.Writer
	greeting string
}

func newGreeter(out io.Writer) *greeter { return &greeter{out: out, greeting: "hello"} }

func (g *greeter) serve(ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		io.WriteString(g.out, "greeted\n")
		io.WriteString(conn, g.greeting+"\n")
		conn.Close()
	}
}

func TestStart(t *testing.T) {
	for _, tt := range []struct {
		change func(*greeter)
		want   string
	}{
		{nil, "hello\n"},
		{func(g *greeter) { g.greeting = "bonjour" }, "bonjour\n"},
	} {
		addr, out := Start(t, newGreeter, (*greeter).serve, tt.change)
		got, err := bufio.NewReader(Dial(t, addr)).ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
		out.WaitFor(t, "greeted\n")
	}
}
