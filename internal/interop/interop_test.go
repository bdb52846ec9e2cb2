package interop

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// startChapter builds a chapter and runs it on a free port, as a reader
// would with go run. It returns the address the chapter printed.
func startChapter(t *testing.T, chapter string) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), chapter)
	build := exec.Command("go", "build", "-o", bin, "./"+chapter)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./%s: %v\n%s", chapter, err, out)
	}

	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})

	lines := bufio.NewReader(stdout)
	first, err := lines.ReadString('\n')
	if err != nil {
		t.Fatalf("%s printed nothing: %v", chapter, err)
	}
	// Keep reading what the chapter prints, so that it never blocks on a
	// full pipe.
	go io.Copy(io.Discard, lines)

	m := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)/`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("%s did not print its URL; it printed %q", chapter, first)
	}
	return m[1]
}

func dial(t *testing.T, addr, path string) *websocket.Conn {
	t.Helper()
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := dialer.Dial("ws://"+addr+path, nil)
	if err != nil {
		t.Fatalf("gorilla/websocket could not connect: %v (response: %v)", err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// gorilla/websocket checks Sec-WebSocket-Accept itself: a connection means
// chapter 03's handshake is right by an independent implementation.
func TestGorillaCompletesTheHandshakeWithChapter03(t *testing.T) {
	addr := startChapter(t, "03-handshake")
	conn := dial(t, addr, "/ws")
	if err := conn.WriteMessage(websocket.TextMessage, []byte("Hello")); err != nil {
		t.Fatal(err)
	}
}

// Every size at and around the length boundaries, text and binary, comes
// back from chapter 05 byte for byte. gorilla/websocket sends large
// messages as many fragments, so this also checks that fragments are echoed
// in a way another implementation reassembles.
func TestGorillaGetsExactEchoesFromChapter05(t *testing.T) {
	conn := dial(t, startChapter(t, "05-send-frames"), "/ws")
	echoEverySize(t, conn, []int{0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20})
	closeNormally(t, conn)
}

// Chapter 06's /echo, up to its default limit of 16 MiB.
func TestGorillaGetsExactEchoesFromChapter06(t *testing.T) {
	conn := dial(t, startChapter(t, "06-full-server"), "/echo")
	echoEverySize(t, conn, []int{0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20, 16 << 20})
	closeNormally(t, conn)
}

func echoEverySize(t *testing.T, conn *websocket.Conn, sizes []int) {
	t.Helper()
	for _, n := range sizes {
		for _, kind := range []int{websocket.TextMessage, websocket.BinaryMessage} {
			payload := bytes.Repeat([]byte("websocket"), n/9+1)[:n]
			conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := conn.WriteMessage(kind, payload); err != nil {
				t.Fatalf("write %d bytes: %v", n, err)
			}
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			gotKind, got, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("read the echo of %d bytes: %v", n, err)
			}
			if gotKind != kind || !bytes.Equal(got, payload) {
				t.Fatalf("sent %d bytes of type %d, got %d bytes of type %d back", n, kind, len(got), gotKind)
			}
		}
	}
}

// closeNormally sends a close 1000 and expects the server's close 1000 back.
func closeNormally(t *testing.T, conn *websocket.Conn) {
	t.Helper()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := conn.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("want the server's close 1000, got %v", err)
	}
}
