package booktest

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// WS is a small RFC 6455 client for tests that need exact bytes on the wire:
// it writes masked frames of any shape, including the malformed ones a
// conformance test sends, and reads the server's frames one at a time. It is
// written here, apart from the chapters, from the RFC's text.
type WS struct {
	net.Conn
	R *bufio.Reader
}

// Frame is a frame as the server sent it.
type Frame struct {
	Fin     bool
	RSV     byte
	Opcode  byte
	Masked  bool
	Payload []byte
}

// DialWS opens a WebSocket to ws://addr+path with a fresh random key, and
// checks the 101 answer and its Sec-WebSocket-Accept. extra holds more
// header lines ("Origin: http://x").
func DialWS(t testing.TB, addr, path string, extra ...string) *WS {
	t.Helper()
	ws, resp, err := TryDialWS(addr, path, extra...)
	if err != nil {
		t.Fatalf("dial ws://%s%s: %v", addr, path, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("dial ws://%s%s: %s", addr, path, resp.Status)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// TryDialWS is DialWS for callers that want to see a refusal: the response
// is returned whatever its status, and the connection only with a 101.
func TryDialWS(addr, path string, extra ...string) (*WS, *http.Response, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	key := base64.StdEncoding.EncodeToString(nonce)
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n"
	for _, h := range extra {
		req += h + "\r\n"
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, resp, nil
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if want := base64.StdEncoding.EncodeToString(sum[:]); resp.Header.Get("Sec-WebSocket-Accept") != want {
		conn.Close()
		return nil, resp, fmt.Errorf("Sec-WebSocket-Accept %q, want %q", resp.Header.Get("Sec-WebSocket-Accept"), want)
	}
	conn.SetDeadline(time.Time{})
	return &WS{Conn: conn, R: br}, resp, nil
}

// ClientFrame encodes a frame as a client must send it: masked with key.
// first is the whole first byte (FIN, RSV1-3, opcode), so tests can set
// any bits they like. The length takes the shortest of the three forms of
// RFC 6455 section 5.2, as a client's should.
func ClientFrame(first byte, payload []byte, key [4]byte) []byte {
	out := appendClientFrameHeader(make([]byte, 0, 14+len(payload)), first, uint64(len(payload)), key)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}

// ClientFrameHeader is the header ClientFrame writes for a payload of n
// bytes (2 to 14 bytes: first, MASK and the length, key), for tests that
// declare a payload and then send less of it, or none.
func ClientFrameHeader(first byte, n uint64, key [4]byte) []byte {
	return appendClientFrameHeader(nil, first, n, key)
}

func appendClientFrameHeader(out []byte, first byte, n uint64, key [4]byte) []byte {
	switch {
	case n <= 125:
		out = append(out, first, 0x80|byte(n))
	case n <= 0xFFFF:
		out = binary.BigEndian.AppendUint16(append(out, first, 0x80|126), uint16(n))
	default:
		out = binary.BigEndian.AppendUint64(append(out, first, 0x80|127), n)
	}
	return append(out, key[:]...)
}

// MaskFrame turns an unmasked frame (one of the RFC's examples, or what a
// server's encoder wrote) into what a client sends with the same header:
// the MASK bit set, key after the length, and the payload XORed with it.
// headerLen is the length of the unmasked frame's header. Unlike
// ClientFrame, it keeps the length form it is given, whatever it is.
func MaskFrame(unmasked []byte, headerLen int, key [4]byte) []byte {
	out := make([]byte, 0, len(unmasked)+4)
	out = append(out, unmasked[:headerLen]...)
	out[1] |= 0x80
	out = append(out, key[:]...)
	for i, c := range unmasked[headerLen:] {
		out = append(out, c^key[i%4])
	}
	return out
}

// Send writes one masked frame with a random key.
func (ws *WS) Send(first byte, payload []byte) error {
	var key [4]byte
	rand.Read(key[:])
	ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := ws.Write(ClientFrame(first, payload, key))
	return err
}

// ReadFrame reads the server's next frame.
func (ws *WS) ReadFrame() (Frame, error) {
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	return ReadFrame(ws.R)
}

// ReadFrame reads one server frame from r, laid out as RFC 6455 section 5.2
// describes it. It reads no masking key: a server sends none, and a frame
// with the MASK bit set is returned with Masked true for the caller to
// refuse. It refuses a payload over 64 MiB rather than allocate it.
func ReadFrame(r io.Reader) (Frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Fin: h[0]&0x80 != 0, RSV: h[0] & 0x70, Opcode: h[0] & 0x0F, Masked: h[1]&0x80 != 0}
	length := uint64(h[1] & 0x7F)
	switch length {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return f, err
		}
		length = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return f, err
		}
		length = binary.BigEndian.Uint64(ext[:])
	}
	if length > 64<<20 {
		return f, fmt.Errorf("server frame of %d bytes", length)
	}
	f.Payload = make([]byte, length)
	_, err := io.ReadFull(r, f.Payload)
	return f, err
}

// ReadServerFrame reads the server's next frame from r, as ReadFrame does,
// and fails the test if it cannot, or if the frame is masked: a server
// never masks (RFC 6455 section 5.1).
func ReadServerFrame(t testing.TB, r io.Reader) Frame {
	t.Helper()
	f, err := ReadFrame(r)
	if err != nil {
		t.Fatalf("read a server frame: %v", err)
	}
	if f.Masked {
		t.Fatalf("a server frame must not be masked: opcode %d, %d bytes", f.Opcode, len(f.Payload))
	}
	return f
}

// ReadMessage reads frames until a whole data message, or a control frame,
// has arrived, and returns its opcode and payload. It also checks that every
// frame is one a server may send: unmasked (RFC 6455 section 5.1), without
// RSV bits (section 5.2), control frames final and short (section 5.5), and
// fragments in order (section 5.4).
func (ws *WS) ReadMessage() (byte, []byte, error) {
	var opcode byte
	var message []byte
	for {
		f, err := ws.ReadFrame()
		if err != nil {
			return 0, nil, err
		}
		switch {
		case f.Masked:
			return 0, nil, fmt.Errorf("server frame with opcode %d is masked", f.Opcode)
		case f.RSV != 0:
			return 0, nil, fmt.Errorf("server frame with opcode %d has RSV bits %#x", f.Opcode, f.RSV)
		case f.Opcode >= 0x8 && (!f.Fin || len(f.Payload) > 125):
			return 0, nil, fmt.Errorf("server control frame with opcode %d: FIN %v, %d bytes", f.Opcode, f.Fin, len(f.Payload))
		case f.Opcode >= 0x8:
			return f.Opcode, f.Payload, nil
		case f.Opcode == 0 && opcode == 0, f.Opcode != 0 && opcode != 0:
			return 0, nil, fmt.Errorf("server frame with opcode %d breaks fragmentation", f.Opcode)
		}
		if f.Opcode != 0 {
			opcode = f.Opcode
		}
		message = append(message, f.Payload...)
		if f.Fin {
			return opcode, message, nil
		}
	}
}

// CloseCode returns the status code of a close frame's payload, 1005 if it
// has none.
func CloseCode(payload []byte) int {
	if len(payload) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(payload))
}
