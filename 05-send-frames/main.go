// Chapter 05: sending frames.
//
// Chapter 04 decoded the client's frames; now the server answers with
// frames of its own. appendFrame in frame.go encodes them: never masked,
// with the shortest length form. /ws echoes every text and binary frame
// back as it came, and answers a close frame with a close frame. The page
// checks each echo against what it sent, and shows the frames of its last
// message byte by byte: as the browser masked them, as the server read
// them, and the server's reply. Those details travel on a path of their
// own, GET /inspect, so that /ws stays a pure echo.
//
//	go run ./05-send-frames
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
	"net/url"
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
	fmt.Printf("chapter 05 listening: open http://%s/ in your browser\n\n", ln.Addr())
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
	sendTimeout time.Duration // how long one frame may take to send
	maxPayload  uint64        // the largest frame payload we accept, in bytes

	inspections inspections // the last frames of each page that asked, for GET /inspect
}

func newServer(out io.Writer) *server {
	return &server{
		out:         out,
		headLimit:   8 << 10, // 8 KiB, the usual limit of web servers
		headTimeout: 10 * time.Second,
		maxConns:    256,
		idleTimeout: 10 * time.Minute,
		sendTimeout: 10 * time.Second,
		maxPayload:  1 << 20, // 1 MiB, the largest payload the page sends
		inspections: inspections{last: map[string]*inspection{}},
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

	path, rawQuery, _ := strings.Cut(req.target, "?")
	query, _ := url.ParseQuery(rawQuery)
	switch {
	case req.method == "GET" && path == "/":
		respond(conn, "200 OK", "text/html; charset=utf-8", page)
	case path == "/ws":
		if s.upgrade(conn, req) {
			s.echo(conn, br, query.Get("inspect"))
		}
	case req.method == "GET" && path == "/inspect":
		s.inspections.serve(conn, query.Get("token"))
	default:
		respond(conn, "404 Not Found", "text/plain; charset=utf-8",
			[]byte("chapter 05 serves its page at /, WebSocket connections at /ws and frame details at /inspect\n"))
	}
}

// echo decodes and dissects frames as chapter 04 did, and now answers them:
// each text, binary or continuation frame goes back as it came (same FIN,
// same opcode, same payload), and a close frame is answered with a close
// frame carrying the same status, after which we hang up (RFC 6455 section
// 5.5.1; chapter 06 checks the status first). If the page gave a token no
// other connection holds, the frames are also kept for GET /inspect.
func (s *server) echo(conn net.Conn, br *bufio.Reader, token string) {
	from := conn.RemoteAddr()
	frames := &frameReader{r: br, maxPayload: s.maxPayload}
	var message messageSum
	token = s.inspections.claim(token)
	defer s.inspections.forget(token)
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
			// Echo the status code, the payload's first 2 bytes (RFC 6455
			// section 5.5.1), without the reason; a payload too short to
			// hold a code gets an empty close frame back.
			var status []byte
			if len(f.payload) >= 2 {
				status = f.payload[:2]
			}
			reply := appendFrame(nil, true, opClose, status)
			s.send(conn, reply)
			fmt.Fprintf(s.out, "  reply       % x (close)\n\n--- %s: close frame answered: hanging up ---\n\n", reply, from)
			hangUp(conn) // so that the close frame arrives, whatever the client still sends
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
		reply := appendFrame(nil, f.fin, f.opcode, f.payload)
		// Recorded before it is sent: a page that fetches /inspect as soon
		// as the echo arrives must find this frame, not the one before.
		s.inspections.record(token, f, reply)
		if err := s.send(conn, reply); err != nil {
			fmt.Fprintf(s.out, "\n--- %s: connection over: %v ---\n\n", from, err)
			return
		}
		fmt.Fprintf(s.out, "  reply       %d bytes, header % x\n", len(reply), reply[:len(reply)-len(f.payload)])
		if summary != "" {
			fmt.Fprintf(s.out, "  %s, echoed\n", summary)
		}
		fmt.Fprintln(s.out)
	}
}

// send writes one encoded frame, giving up after sendTimeout: a client
// that stops reading must not hold this goroutine forever.
func (s *server) send(conn net.Conn, frame []byte) error {
	conn.SetWriteDeadline(time.Now().Add(s.sendTimeout))
	_, err := conn.Write(frame)
	return err
}
