package main

// The load generator's client: one for all three servers, so that what it
// costs is the same whichever server it drives. It is minimal on purpose:
// the frame it sends is masked once, in advance, and every connection reads
// into one buffer that it reuses, so the client allocates nothing per
// message.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// wsClient is one client connection, after the handshake.
type wsClient struct {
	conn net.Conn
	r    *bufio.Reader
	head [8]byte
	buf  []byte // the last message read
}

// The key a client sends and the accept value a server must answer with:
// the example of RFC 6455 section 1.3. A random key buys nothing here.
const (
	clientKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	clientAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// dial opens a WebSocket to ws://addr+path. readBuf is the size of the
// client's read buffer: 64 KiB for the echo clients, less for the
// thousands of idle and chat clients.
func dial(addr, path string, readBuf int) (*wsClient, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + clientKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(conn, readBuf)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != clientAccept {
		conn.Close()
		return nil, fmt.Errorf("ws://%s%s answered %s, accept %q", addr, path, resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	conn.SetDeadline(time.Time{})
	return &wsClient{conn: conn, r: r}, nil
}

// clientFrame encodes one final frame as a client must send it: masked
// (RFC 6455 section 5.3). The load generator builds it once and sends the
// same bytes every time.
func clientFrame(opcode byte, payload []byte) []byte {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	f := []byte{0x80 | opcode}
	switch n := len(payload); {
	case n <= 125:
		f = append(f, 0x80|byte(n))
	case n <= 0xFFFF:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	f = append(f, key[:]...)
	for i, b := range payload {
		f = append(f, b^key[i%4])
	}
	return f
}

var errClosed = errors.New("server sent a close frame")

// readMessage reads one message, reassembled if the server fragmented it,
// into the client's buffer; the result is valid until the next call.
func (c *wsClient) readMessage() (opcode byte, msg []byte, err error) {
	c.buf = c.buf[:0]
	for {
		h := c.head[:2]
		if _, err := io.ReadFull(c.r, h); err != nil {
			return 0, nil, err
		}
		fin, op, n := h[0]&0x80 != 0, h[0]&0x0F, uint64(h[1]&0x7F)
		if h[1]&0x80 != 0 {
			return 0, nil, errors.New("server frame is masked")
		}
		switch n {
		case 126:
			if _, err := io.ReadFull(c.r, c.head[:2]); err != nil {
				return 0, nil, err
			}
			n = uint64(binary.BigEndian.Uint16(c.head[:2]))
		case 127:
			if _, err := io.ReadFull(c.r, c.head[:8]); err != nil {
				return 0, nil, err
			}
			n = binary.BigEndian.Uint64(c.head[:8])
		}
		if n > 64<<20 {
			return 0, nil, fmt.Errorf("server frame of %d bytes", n)
		}
		if op >= 0x8 { // control frames: the servers here send none but close
			var ctl [125]byte
			if _, err := io.ReadFull(c.r, ctl[:n]); err != nil {
				return 0, nil, err
			}
			if op == 0x8 {
				return 0, nil, errClosed
			}
			continue
		}
		if op != 0 {
			opcode = op
		}
		start := len(c.buf)
		if need := start + int(n); need > cap(c.buf) {
			c.buf = append(c.buf[:start:start], make([]byte, need-start)...)
		}
		c.buf = c.buf[:start+int(n)]
		if _, err := io.ReadFull(c.r, c.buf[start:]); err != nil {
			return 0, nil, err
		}
		if fin {
			return opcode, c.buf, nil
		}
	}
}

// roundTrip sends frame and reads the echo, checking its length; with
// check set, it compares the bytes with want as well.
func (c *wsClient) roundTrip(frame, want []byte, check bool) error {
	if _, err := c.conn.Write(frame); err != nil {
		return err
	}
	_, got, err := c.readMessage()
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return fmt.Errorf("sent %d bytes, %d came back", len(want), len(got))
	}
	if check && string(got) != string(want) {
		return errors.New("the echo differs from what was sent")
	}
	return nil
}
