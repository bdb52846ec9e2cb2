// Chapter 04: reading frames.
//
// Chapter 03 accepted the handshake and printed what followed as hex. Now
// the server decodes those bytes: each frame's FIN bit, reserved bits and
// opcode, the mask bit, the payload length in its 7-, 16- or 64-bit form,
// the masking key, and the payload, unmasked. The terminal dissects every
// frame field by field. What RFC 6455 forbids a client to send is refused
// with the rule it broke, and a length over the limit is refused before any
// memory is set aside for it. The decoder is in frame.go.
//
//	go run ./04-read-frames
package main

import (
	"bufio"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
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
	fmt.Printf("chapter 04 listening: open http://%s/ in your browser\n\n", ln.Addr())
	log.Fatal(newServer(os.Stdout).serve(ln))
}

// server holds what every connection needs: where to print, and the
// limits that keep one client from costing us unbounded memory or time.
type server struct {
	out         io.Writer
	headLimit   int           // the largest request head we accept, in bytes
	headTimeout time.Duration // how long a client has to send the whole head
	maxConns    int           // the most connections served at once
	idleTimeout time.Duration // how long an open WebSocket may stay silent
	maxPayload  uint64        // the largest frame payload we accept, in bytes
}

func newServer(out io.Writer) *server {
	return &server{
		out:         out,
		headLimit:   8 << 10, // 8 KiB, the usual limit of web servers
		headTimeout: 10 * time.Second,
		maxConns:    256,
		idleTimeout: 10 * time.Minute,
		maxPayload:  1 << 20, // 1 MiB, the largest payload the page sends
	}
}

// serve accepts connections until ln is closed. Each connection gets its own
// goroutine, so one slow client never holds up the next, and at most
// maxConns are served at once: a crowd past that waits in the kernel's
// queue for a free slot, instead of costing us a file and memory each.
func (s *server) serve(ln net.Listener) error {
	slots := make(chan struct{}, s.maxConns)
	for {
		slots <- struct{}{} // blocks while maxConns connections are being served
		conn, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return err
		}
		if err != nil {
			// Out of file descriptors, say: no reason to stop serving.
			// Wait, and try again.
			<-slots
			fmt.Fprintf(s.out, "--- accept failed: %v; trying again in a second ---\n\n", err)
			time.Sleep(time.Second)
			continue
		}
		go func() {
			defer func() { <-slots }()
			s.handle(conn)
		}()
	}
}

// handle reads one request (readRequest, in head.go) and answers it: the
// page at /, the WebSocket handshake at /ws.
func (s *server) handle(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	req := s.readRequest(conn, br)
	if req == nil {
		return
	}

	switch {
	case req.method == "GET" && req.target == "/":
		respond(conn, "200 OK", "text/html; charset=utf-8", page)
	case req.target == "/ws":
		if s.upgrade(conn, req) {
			s.readFrames(conn, br)
		}
	default:
		respond(conn, "404 Not Found", "text/plain; charset=utf-8",
			[]byte("chapter 04 serves its page at / and WebSocket connections at /ws\n"))
	}
}

// readFrames decodes and dissects frames until the client sends a close
// frame, breaks a rule, or goes quiet for longer than idleTimeout. This
// chapter cannot send frames yet, so it answers nothing: a close frame or a
// bad frame simply ends the TCP connection (chapter 05 answers a close
// frame, and chapter 06 does the whole closing handshake).
func (s *server) readFrames(conn net.Conn, br *bufio.Reader) {
	from := conn.RemoteAddr()
	frames := &frameReader{r: br, maxPayload: s.maxPayload}
	var message messageSum
	for n := 1; ; n++ {
		conn.SetReadDeadline(time.Now().Add(s.idleTimeout))
		f, err := frames.next()
		if err != nil {
			fmt.Fprintf(s.out, "--- %s: connection over: %v ---\n\n", from, err)
			return
		}
		fmt.Fprintf(s.out, "--- %s: frame %d, %d bytes on the wire ---\n%s",
			from, n, len(f.header)+len(f.payload), dissect(f))
		if f.opcode == opClose {
			fmt.Fprintf(s.out, "\n--- %s: close frame received: hanging up ---\n\n", from)
			return
		}
		if f.opcode >= opClose {
			fmt.Fprintf(s.out, "  (a control frame: no reply until chapter 06)\n\n")
			continue
		}
		summary, err := message.add(f)
		if err != nil {
			fmt.Fprintf(s.out, "\n--- %s: connection over: %v ---\n\n", from, err)
			return
		}
		if summary != "" {
			fmt.Fprintf(s.out, "  %s\n", summary)
		}
		fmt.Fprintln(s.out)
	}
}
