package main

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
)

// upgrade answers a request for /ws: a refusal with the reason, or the
// 101 response that turns this TCP connection into a WebSocket. It reports
// whether it sent the 101: from then on the connection carries frames.
func (s *server) upgrade(conn net.Conn, req *request) bool {
	from := conn.RemoteAddr()
	if r := checkUpgrade(req); r != nil {
		fmt.Fprintf(s.out, "--- %s: %s, %s ---\n\n", from, r.status, r.reason)
		refuse(conn, r.status, r.reason, r.header...)
		return false
	}
	accept := acceptKey(req.header("Sec-WebSocket-Key"))
	fmt.Fprintf(conn, "HTTP/1.1 101 Switching Protocols\r\n"+
		"Upgrade: websocket\r\n"+
		"Connection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: %s\r\n"+
		"\r\n", accept)
	fmt.Fprintf(s.out, "--- %s: 101 Switching Protocols, Sec-WebSocket-Accept: %s ---\n\n", from, accept)
	return true
}

// refusal is a handshake the server will not accept: the status to answer
// with, any header that status calls for, and the reason in words.
type refusal struct {
	status string
	header []string
	reason string
}

// checkUpgrade applies the rules of RFC 6455 section 4.2.1 to a request for
// the WebSocket endpoint. It checks the version before the key: a client
// of another version may send a key of another shape, and what it needs to
// hear is 426 and the version we speak. It returns nil for a valid opening
// handshake.
func checkUpgrade(req *request) *refusal {
	bad := func(reason string) *refusal { return &refusal{status: "400 Bad Request", reason: reason} }
	// A body on the handshake has no place to go: once we answer 101, its
	// bytes would be read as WebSocket frames.
	withBody := func(field string) *refusal {
		return bad(fmt.Sprintf("the opening handshake must not have a body (a GET body has no defined meaning, RFC 9110 section 9.3.1), but it has %q",
			field+": "+req.header(field)))
	}
	switch {
	case req.method != "GET":
		return &refusal{"405 Method Not Allowed", []string{"Allow: GET"},
			"the opening handshake must be a GET request (RFC 6455 section 4.1), not " + req.method}
	case req.minor < 1: // parseHead has refused every major version but 1
		return bad("the opening handshake needs HTTP/1.1 or higher (RFC 6455 section 4.1), not " + req.proto)
	case req.header("Transfer-Encoding") != "":
		return withBody("Transfer-Encoding")
	case req.header("Content-Length") != "" && req.header("Content-Length") != "0":
		return withBody("Content-Length")
	case req.header("Host") == "":
		return bad("missing Host header (RFC 6455 section 4.1)")
	case !hasToken(req.header("Upgrade"), "websocket"):
		return bad(`missing "Upgrade: websocket" (RFC 6455 section 4.2.1)`)
	case !hasToken(req.header("Connection"), "upgrade"):
		return bad(`"Connection" must include "Upgrade" (RFC 6455 section 4.2.1)`)
	case req.header("Sec-WebSocket-Version") != "13":
		// Name the version we speak, so that the client can retry with it
		// (RFC 6455 section 4.4).
		return &refusal{"426 Upgrade Required", []string{"Sec-WebSocket-Version: 13"},
			fmt.Sprintf("unsupported Sec-WebSocket-Version %q: this server speaks 13 (RFC 6455 section 4.4)", req.header("Sec-WebSocket-Version"))}
	}
	key := req.header("Sec-WebSocket-Key")
	if nonce, err := base64.StdEncoding.DecodeString(key); err != nil || len(nonce) != 16 {
		return bad(fmt.Sprintf("Sec-WebSocket-Key %q is not 16 bytes in base64 (RFC 6455 section 4.1)", key))
	}
	return nil
}

// hasToken reports whether a comma-separated header value such as
// "keep-alive, Upgrade" holds token, ignoring case.
func hasToken(list, token string) bool {
	for _, item := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(item), token) {
			return true
		}
	}
	return false
}

// websocketGUID is the fixed string of RFC 6455 section 1.3. A server that
// is not a WebSocket server will not know it, so a correct accept value
// shows the client that the server understood the handshake: a plain HTTP
// server or cache cannot answer one by accident.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptKey computes Sec-WebSocket-Accept: the base64 of the SHA-1 hash of
// the client's key, as sent, followed by the GUID (RFC 6455 section 4.2.2).
func acceptKey(key string) string {
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}
