// Chapter 03: the opening handshake.
//
// Chapter 02 parsed the upgrade request; now the server answers it. A
// request for /ws is checked against the rules of RFC 6455 section 4.2.1 and
// either refused with a status and a reason, or accepted with
// 101 Switching Protocols and the Sec-WebSocket-Accept value that proves the
// server read the client's key. From then on the connection carries
// WebSocket frames, and this chapter simply prints them as hex: chapter 04
// decodes them. The checks and the 101 are in handshake.go; head.go reads
// and parses the head as in chapter 02.
//
//	go run ./03-handshake
package main

import (
	"bufio"
	_ "embed"
	"encoding/hex"
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
	fmt.Printf("chapter 03 listening: open http://%s/ in your browser\n\n", ln.Addr())
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
}

func newServer(out io.Writer) *server {
	return &server{
		out:         out,
		headLimit:   8 << 10, // 8 KiB, the usual limit of web servers
		headTimeout: 10 * time.Second,
		maxConns:    256,
		idleTimeout: 10 * time.Minute,
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
			s.dump(conn, br)
		}
	default:
		respond(conn, "404 Not Found", "text/plain; charset=utf-8",
			[]byte("chapter 03 serves its page at / and WebSocket connections at /ws\n"))
	}
}

// dump prints, as hex, whatever the client sends once the handshake is
// done. Those bytes are WebSocket frames; chapter 04 decodes them. Each
// Read is bounded by the buffer, and a connection that stays silent longer
// than idleTimeout is closed.
func (s *server) dump(conn net.Conn, br *bufio.Reader) {
	from := conn.RemoteAddr()
	buf := make([]byte, 4096)
	for {
		conn.SetReadDeadline(time.Now().Add(s.idleTimeout))
		n, err := br.Read(buf)
		if n > 0 {
			fmt.Fprintf(s.out, "--- %s: %d bytes ---\n%s\n", from, n, hex.Dump(buf[:n]))
		}
		if err != nil {
			fmt.Fprintf(s.out, "--- %s: connection over: %v ---\n\n", from, err)
			return
		}
	}
}
