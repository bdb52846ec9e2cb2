package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf8"
)

// The opcodes of RFC 6455 section 5.2. Opcodes 0x3-0x7 and 0xB-0xF are
// reserved for future use, and a frame that uses one is refused.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// The close status codes this server sends (RFC 6455 section 7.4.1).
const (
	closeNormal        = 1000 // the purpose of the connection is fulfilled
	closeGoingAway     = 1001 // the server is shutting down
	closeProtocolError = 1002 // the peer broke a rule of the protocol
	closeUnsupported   = 1003 // a kind of message this endpoint cannot take
	closeInvalidData   = 1007 // a text message that is not UTF-8
	closePolicy        = 1008 // a rule of this server, such as a chat client too slow to keep up
	closeTooBig        = 1009 // a message over the limit
	closeTryAgainLater = 1013 // no memory for the message just now (IANA's registry, after RFC 6455)
)

// protocolError is a reason to fail the connection: the close code to send
// and what was wrong, in words.
type protocolError struct {
	code   int
	reason string
}

func (e *protocolError) Error() string { return fmt.Sprintf("%s (close %d)", e.reason, e.code) }

func fail(code int, format string, args ...any) error {
	return &protocolError{code: code, reason: fmt.Sprintf(format, args...)}
}

// frame is one decoded WebSocket frame. The payload is already unmasked.
type frame struct {
	fin     bool    // the last frame of a message
	rsv     byte    // RSV1-3 as the bits 0x40, 0x20, 0x10 of the first byte
	opcode  byte    // what the payload is: text, binary, close, ...
	masked  bool    // whether the sender masked the payload (clients must)
	maskKey [4]byte // the key the payload was masked with
	payload []byte  // the unmasked payload of a control frame, valid until the next frame is read
}

// frameReader decodes frames from a stream. next reads a frame's header
// (and the payload of a control frame, at most 125 bytes, into the reader's
// own array, so that a ping between the fragments of a message does not
// overwrite the message); readPayload then reads a data frame's payload as
// it arrives, into memory the caller grows as it does.
type frameReader struct {
	r          io.Reader
	maxPayload uint64   // data frames with a longer payload are refused: what is left of the message limit
	head       [14]byte // the longest header: 2 + 8 bytes of length + 4 of mask key
	control    [125]byte

	remaining uint64  // bytes of the data frame's payload not yet read
	maskKey   [4]byte // its masking key
	maskPos   int     // how many of its bytes have been unmasked, for the key's rotation
}

// next reads one frame's header and checks it. The layout is RFC 6455
// section 5.2's:
//
//	byte 0:     FIN, RSV1, RSV2, RSV3, then a 4-bit opcode
//	byte 1:     MASK, then a 7-bit payload length
//	            (126: a 16-bit length follows; 127: a 64-bit length follows)
//	next 0/2/8: the extended payload length, in network byte order
//	next 0/4:   the masking key, if MASK is set
//	the rest:   the payload
//
// A control frame comes back whole, its payload unmasked. For a data frame,
// the payload is left to readPayload.
func (fr *frameReader) next() (frame, error) {
	var f frame
	h := fr.head[:2]
	if _, err := io.ReadFull(fr.r, h); err != nil {
		return f, err
	}
	f.fin = h[0]&0x80 != 0
	f.rsv = h[0] & 0x70
	f.opcode = h[0] & 0x0F
	f.masked = h[1]&0x80 != 0
	length := uint64(h[1] & 0x7F)

	switch length {
	case 126:
		h = fr.head[:4]
		if _, err := io.ReadFull(fr.r, h[2:]); err != nil {
			return f, unexpected(err)
		}
		length = uint64(binary.BigEndian.Uint16(h[2:]))
		if length < 126 {
			return f, fail(closeProtocolError, "length %d sent in the 16-bit form, which is for 126 to 65535 (RFC 6455 section 5.2)", length)
		}
	case 127:
		h = fr.head[:10]
		if _, err := io.ReadFull(fr.r, h[2:]); err != nil {
			return f, unexpected(err)
		}
		length = binary.BigEndian.Uint64(h[2:])
		if length>>63 != 0 {
			return f, fail(closeProtocolError, "64-bit length with the most significant bit set (RFC 6455 section 5.2)")
		}
		if length <= 0xFFFF {
			return f, fail(closeProtocolError, "length %d sent in the 64-bit form, which is for 65536 and up (RFC 6455 section 5.2)", length)
		}
	}

	if err := f.check(length, fr.maxPayload); err != nil {
		return f, err
	}

	if f.masked {
		n := len(h)
		h = fr.head[:n+4]
		if _, err := io.ReadFull(fr.r, h[n:]); err != nil {
			return f, unexpected(err)
		}
		copy(f.maskKey[:], h[n:])
	}

	if f.opcode < opClose {
		fr.remaining, fr.maskKey, fr.maskPos = length, f.maskKey, 0
		return f, nil
	}
	f.payload = fr.control[:length]
	if _, err := io.ReadFull(fr.r, f.payload); err != nil {
		return f, unexpected(err)
	}
	maskFast(f.maskKey, f.payload)
	return f, nil
}

// readPayload reads into p what has arrived of the data frame's payload, at
// least one byte and at most len(p) or what is left of the frame, and
// unmasks it. It waits only for the first byte: bytes that arrive are
// handed over at once.
func (fr *frameReader) readPayload(p []byte) (int, error) {
	p = p[:min(uint64(len(p)), fr.remaining)]
	n, err := fr.r.Read(p)
	key := fr.maskKey
	for i := range key { // the key as it lines up with p's first byte
		key[i] = fr.maskKey[(fr.maskPos+i)%4]
	}
	maskFast(key, p[:n])
	fr.maskPos += n
	fr.remaining -= uint64(n)
	if err != nil && fr.remaining > 0 {
		return n, unexpected(err)
	}
	return n, nil
}

// check applies the rules a server enforces on every frame from a client,
// before reading its payload.
func (f *frame) check(length, maxPayload uint64) error {
	switch {
	case !f.masked:
		return fail(closeProtocolError, "client frame not masked (RFC 6455 section 5.1)")
	case f.rsv != 0:
		return fail(closeProtocolError, "RSV bits %03b set, but no extension was negotiated (RFC 6455 section 5.2)", f.rsv>>4)
	case f.opcode > opBinary && f.opcode < opClose || f.opcode > opPong:
		return fail(closeProtocolError, "unknown opcode 0x%X (RFC 6455 section 5.2)", f.opcode)
	case f.opcode >= opClose && length > 125:
		return fail(closeProtocolError, "control frame with a %d-byte payload; the limit is 125 (RFC 6455 section 5.5)", length)
	case f.opcode >= opClose && !f.fin:
		return fail(closeProtocolError, "fragmented control frame (RFC 6455 section 5.5)")
	case f.opcode < opClose && length > maxPayload:
		return fail(closeTooBig, "a %d-byte frame would take the message over the limit: %d bytes are left", length, maxPayload)
	}
	return nil
}

// unexpected turns an EOF in the middle of a frame into io.ErrUnexpectedEOF:
// a peer that hangs up between frames is normal, one that hangs up inside a
// frame is not.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// appendFrame appends one frame to dst, unmasked: a server never masks
// what it sends (RFC 6455 section 5.1). The length takes the shortest of
// the three forms that fits, as section 5.2 requires.
func appendFrame(dst []byte, fin bool, opcode byte, payload []byte) []byte {
	first := opcode
	if fin {
		first |= 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		dst = append(dst, first, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, first, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, first, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// frameHeader encodes just the header appendFrame would write, into h,
// and returns its length. Writing a large payload after it, straight from
// where it lies, saves copying it into a frame buffer.
func frameHeader(h *[10]byte, fin bool, opcode byte, length int) int {
	h[0] = opcode
	if fin {
		h[0] |= 0x80
	}
	switch {
	case length <= 125:
		h[1] = byte(length)
		return 2
	case length <= 0xFFFF:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(length))
		return 4
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(length))
		return 10
	}
}

// mask XORs b with the 4-byte key in place (RFC 6455 section 5.3): byte i
// is XORed with byte i mod 4 of the key. Masking twice gives back the
// original, so the same function masks and unmasks.
func mask(key [4]byte, b []byte) {
	for i := range b {
		b[i] ^= key[i%4]
	}
}

// maskFast does what mask does, eight bytes at a time: the 4-byte key
// repeated twice is one 64-bit word, and the payload is XORed with it a
// word at a time, four words to a turn of the loop while 32 bytes are
// left. Every step is a multiple of 4 bytes, so the key lines up with the
// bytes after the last whole word from its first byte again.
func maskFast(key [4]byte, b []byte) {
	word := uint64(binary.LittleEndian.Uint32(key[:]))
	word |= word << 32
	for len(b) >= 32 {
		w := b[:32:32] // one bounds check for the four words
		binary.LittleEndian.PutUint64(w[0:], binary.LittleEndian.Uint64(w[0:])^word)
		binary.LittleEndian.PutUint64(w[8:], binary.LittleEndian.Uint64(w[8:])^word)
		binary.LittleEndian.PutUint64(w[16:], binary.LittleEndian.Uint64(w[16:])^word)
		binary.LittleEndian.PutUint64(w[24:], binary.LittleEndian.Uint64(w[24:])^word)
		b = b[32:]
	}
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^word)
		b = b[8:]
	}
	mask(key, b)
}

// validCloseCode reports whether a close frame may carry code (RFC 6455
// section 7.4): the codes defined for use, the ones IANA registered since
// (1012-1014), and the ranges for libraries (3000-3999) and applications
// (4000-4999). 1004-1006 and 1015 are reserved: never on the wire.
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// utf8Checker validates a text message as its fragments arrive, so that
// invalid UTF-8 fails the connection at once rather than at the last
// fragment, even when a character is split between two fragments.
type utf8Checker struct {
	valid int // bytes of the message known to be valid
}

// check validates msg[c.valid:]. An incomplete character at the end is
// fine unless final: the next fragment may complete it.
func (c *utf8Checker) check(msg []byte, final bool) bool {
	rest := msg[c.valid:]
	if utf8.Valid(rest) {
		c.valid = len(msg)
		return true
	}
	for len(rest) > 0 {
		r, size := utf8.DecodeRune(rest)
		if r == utf8.RuneError && size == 1 {
			// Not a whole character: fine only if it is the valid start
			// of one, cut off by the end of this fragment.
			return !final && !utf8.FullRune(rest)
		}
		rest = rest[size:]
		c.valid += size
	}
	return true
}
