package main

import (
	"fmt"
	"net"
)

// respond writes a complete HTTP/1.1 response by hand: a status line,
// three headers, a blank line, the body. Connection: close tells the
// browser not to send another request on this connection, since we read
// only one.
func respond(conn net.Conn, status, contentType string, body []byte) {
	fmt.Fprintf(conn, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		status, contentType, len(body))
	conn.Write(body)
}
