package main

import (
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"sync"
)

// floorRoutes serves the floor: a chat room that does the least a
// broadcast can, to show what the broadcast scenario costs on this machine
// whatever the server. Every message read from any member makes it write
// one prepared frame to every member, one write per member, split between
// two goroutines (the machines we measure on have two cores). No JSON, no
// queues, no checks, no echo: it answers only the broadcast scenario (the
// handshake is answered for the load generator's key only as far as it
// checks). A real server can only be slower: the figure it reaches is the
// kernel's cost of a thousand writes, and the load generator's of a
// thousand reads.
func floorRoutes(mux *http.ServeMux) {
	var mu sync.Mutex
	var members []net.Conn
	said := serverText(`{"type":"message","name":"c0000","text":"` + chatText + `"}`)
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		accept := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		// The member is in the room once its welcome is sent, and not a
		// moment later: the welcome and the joining happen under mu, which
		// a broadcast holds too.
		mu.Lock()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			base64.StdEncoding.EncodeToString(accept[:]) + "\r\n\r\n")
		rw.Write(serverText(`{"type":"welcome"}`))
		err = rw.Flush()
		if err == nil {
			members = append(members, conn)
		}
		mu.Unlock()
		if err != nil {
			return
		}
		for {
			// A masked frame from the load generator: 2 header bytes,
			// 2 more for a length from 126 to 65535, the mask, the payload.
			var h [4]byte
			if _, err := io.ReadFull(rw, h[:2]); err != nil {
				return
			}
			n := int(h[1] & 0x7f)
			if n == 126 {
				if _, err := io.ReadFull(rw, h[2:]); err != nil {
					return
				}
				n = int(h[2])<<8 | int(h[3])
			}
			if _, err := rw.Discard(4 + n); err != nil {
				return
			}
			mu.Lock()
			half := len(members) / 2
			var wg sync.WaitGroup
			for _, part := range [][]net.Conn{members[:half], members[half:]} {
				wg.Go(func() {
					for _, m := range part {
						m.Write(said)
					}
				})
			}
			wg.Wait()
			mu.Unlock()
		}
	})
}

// serverText is an unmasked text frame of s, at most 65535 bytes.
func serverText(s string) []byte {
	if len(s) < 126 {
		return append([]byte{0x81, byte(len(s))}, s...)
	}
	return append([]byte{0x81, 126, byte(len(s) >> 8), byte(len(s))}, s...)
}
