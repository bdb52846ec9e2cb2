// Chapter 01: a raw TCP socket.
//
// Before any WebSocket code, look at what a browser actually sends. This
// program listens on a plain TCP port, prints every byte a client sends with
// the line endings made visible, and answers just enough HTTP by hand to hand
// the browser its page. The page then opens a WebSocket to /ws, and you see
// the upgrade request next to the ordinary page request. Nothing here speaks
// WebSocket yet, so that connection fails, and the page says why.
//
//	go run ./01-raw-socket
package main

import (
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"time"
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "127.0.0.1:8002", "host:port to listen on (port 0 picks a free one)")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("chapter 01 listening: open http://%s/ in your browser\n\n", ln.Addr())
	log.Fatal(serve(ln, os.Stdout))
}

// serve accepts connections until ln is closed and prints what each sends.
// Each connection gets its own goroutine, so one slow client never holds up
// the next.
func serve(ln net.Listener, out io.Writer) error {
	for {
		conn, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return err
		}
		if err != nil {
			// Out of file descriptors, say: no reason to stop serving.
			// Wait, and try again.
			fmt.Fprintf(out, "--- accept failed: %v; trying again in a second ---\n\n", err)
			time.Sleep(time.Second)
			continue
		}
		go handle(conn, out)
	}
}

// handle reads once from the connection, prints the bytes and answers.
//
// One Read, like conn.recv(1024) in the Python study note the book follows,
// is a guess: TCP delivers a stream, and nothing promises the whole request
// arrives in one piece. Chapter 02 reads properly. The deadline and the fixed
// buffer are here from the start: a client that sends nothing, or too much,
// costs us at most 10 seconds and 4 KiB.
func handle(conn net.Conn, out io.Writer) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))

	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		fmt.Fprintf(out, "%s: read failed: %v\n\n", conn.RemoteAddr(), err)
		return
	}
	data := buf[:n]
	fmt.Fprintf(out, "--- %d bytes from %s ---\n%s\n", n, conn.RemoteAddr(), visible(data))

	if strings.HasPrefix(string(data), "GET / ") {
		respond(conn, "200 OK", "text/html; charset=utf-8", page)
		return
	}
	respond(conn, "404 Not Found", "text/plain; charset=utf-8",
		[]byte("chapter 01 only prints requests: it serves its page at / and nothing else\n"))
}

// visible renders bytes so that nothing is hidden: each line ends with its
// \r\n spelled out, and any other byte that is not printable ASCII shows as
// \xNN.
func visible(data []byte) string {
	var b strings.Builder
	for _, c := range data {
		switch {
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\n':
			b.WriteString("\\n\n")
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}
