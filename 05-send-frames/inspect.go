package main

import (
	"encoding/json"
	"fmt"
	"net"
	"sync"
)

// inspections keeps, for each page that asked with ?inspect=TOKEN, the
// last frame its WebSocket sent and the server's reply. The page fetches
// them from GET /inspect?token=TOKEN; an entry lives as long as its
// WebSocket, so memory grows only with the number of open connections.
type inspections struct {
	mu   sync.Mutex
	last map[string]*inspection // nil for a token claimed but with nothing recorded yet
}

// inspection shows the start of each frame as hex, byte by byte.
type inspection struct {
	Received struct {
		Header  string `json:"header"`  // as on the wire: with the mask bit and key
		Wire    string `json:"wire"`    // the first payload bytes, still masked
		Payload string `json:"payload"` // the same bytes, unmasked
		Length  int    `json:"length"`
	} `json:"received"`
	Reply struct {
		Header  string `json:"header"`
		Payload string `json:"payload"`
		Length  int    `json:"length"`
	} `json:"reply"`
}

const inspectBytes = 16 // how much of each payload the inspector shows

// claim reserves token for the connection that opened with it, and returns
// it; or "" (record nothing) if the token is empty, over 64 bytes, or held
// by another connection, which would otherwise see this one's frames, and
// lose its own when this one ends.
func (in *inspections) claim(token string) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, taken := in.last[token]; token == "" || len(token) > 64 || taken {
		return ""
	}
	in.last[token] = nil
	return token
}

// record keeps the start of a frame and of its reply under a claimed token,
// replacing what was kept before.
func (in *inspections) record(token string, f frame, reply []byte) {
	if token == "" {
		return
	}
	var i inspection
	shown := abbreviate(f.payload, inspectBytes)
	wire := append([]byte(nil), shown...)
	mask(f.maskKey, wire)
	i.Received.Header = fmt.Sprintf("% x", f.header)
	i.Received.Wire = fmt.Sprintf("% x", wire)
	i.Received.Payload = fmt.Sprintf("% x", shown)
	i.Received.Length = len(f.payload)
	i.Reply.Header = fmt.Sprintf("% x", reply[:len(reply)-len(f.payload)])
	i.Reply.Payload = fmt.Sprintf("% x", shown)
	i.Reply.Length = len(f.payload)

	in.mu.Lock()
	defer in.mu.Unlock()
	in.last[token] = &i
}

// forget drops what was kept under a claimed token, when its connection
// ends.
func (in *inspections) forget(token string) {
	if token == "" {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	delete(in.last, token)
}

// serve answers GET /inspect?token=TOKEN with the last inspection as JSON.
func (in *inspections) serve(conn net.Conn, token string) {
	in.mu.Lock()
	i := in.last[token]
	in.mu.Unlock()
	if i == nil {
		respond(conn, "404 Not Found", "text/plain; charset=utf-8", []byte("nothing recorded for that token\n"))
		return
	}
	body, _ := json.Marshal(i)
	respond(conn, "200 OK", "application/json", body)
}
