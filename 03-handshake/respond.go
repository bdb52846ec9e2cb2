package main

import (
	"fmt"
	"io"
	"net"
	"time"
)

// respond writes a complete HTTP/1.1 response by hand: a status line, the
// headers, a blank line, the body. Connection: close tells the browser not
// to send another request on this connection, since we read only one.
func respond(conn net.Conn, status, contentType string, body []byte, headers ...string) {
	fmt.Fprintf(conn, "HTTP/1.1 %s\r\n", status)
	for _, h := range headers {
		fmt.Fprintf(conn, "%s\r\n", h)
	}
	fmt.Fprintf(conn, "Content-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", contentType, len(body))
	conn.Write(body)
}

// refuse answers a request the server will not serve, with the status and
// the reason in words, and hangs up so that the answer arrives.
func refuse(conn net.Conn, status, reason string, headers ...string) {
	respond(conn, status, "text/plain; charset=utf-8", []byte(reason+"\n"), headers...)
	hangUp(conn)
}

// hangUp closes a connection so that what we sent last arrives. Closing a
// connection while the client's bytes are still coming in (the rest of a
// head over the limit, a body we never read) makes the kernel reset it,
// and a reset can destroy our last words before the client has read them.
// So we first close only our sending side, which tells the client we are
// done, then read and drop what the client still sends until it closes
// too, for at most lingerTime and lingerBytes, and only then close.
func hangUp(conn net.Conn) {
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, conn, lingerBytes)
	conn.Close()
}

// How long, and how much, hangUp keeps reading after our last words.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 1 << 20 // 1 MiB
)
