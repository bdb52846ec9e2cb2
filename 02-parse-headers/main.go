// Chapter 02: reading and parsing the request head.
//
// Chapter 01 read once and hoped the whole request had arrived. Here the
// server reads properly: line by line until the empty line that ends the
// head, across as many TCP reads as it takes, with a size limit and a
// deadline so that a client can neither flood it nor stall it. Then it parses
// the request line and the header fields, and prints them as a table with the
// four fields the WebSocket handshake needs picked out. Reading and
// parsing the head is in head.go.
//
//	go run ./02-parse-headers
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
	fmt.Printf("chapter 02 listening: open http://%s/ in your browser\n\n", ln.Addr())
	log.Fatal(newServer(os.Stdout).serve(ln))
}

// server holds what every connection needs: where to print, and the
// limits that keep one client from costing us unbounded memory or time.
type server struct {
	out         io.Writer
	headLimit   int           // the largest request head we accept, in bytes
	headTimeout time.Duration // how long a client has to send the whole head
	maxConns    int           // the most connections served at once
}

func newServer(out io.Writer) *server {
	return &server{
		out:         out,
		headLimit:   8 << 10, // 8 KiB, the usual limit of web servers
		headTimeout: 10 * time.Second,
		maxConns:    256,
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

// handle reads one request (readRequest, in head.go) and answers it.
func (s *server) handle(conn net.Conn) {
	defer conn.Close()
	req := s.readRequest(conn, bufio.NewReader(conn))
	if req == nil {
		return
	}

	if req.method == "GET" && req.target == "/" {
		respond(conn, "200 OK", "text/html; charset=utf-8", page)
		return
	}
	respond(conn, "404 Not Found", "text/plain; charset=utf-8",
		[]byte("chapter 02 only parses requests: it serves its page at / and nothing else\n"))
}
