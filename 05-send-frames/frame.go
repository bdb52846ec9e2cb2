package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
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

// frame is one decoded WebSocket frame. The payload is already unmasked.
type frame struct {
	fin     bool    // the last frame of a message
	rsv     byte    // RSV1-3 as the bits 0x40, 0x20, 0x10 of the first byte
	opcode  byte    // what the payload is: text, binary, close, ...
	masked  bool    // whether the sender masked the payload (clients must)
	maskKey [4]byte // the key the payload was masked with
	header  []byte  // the header as it arrived, 2 to 14 bytes, valid until the next frame is read
	payload []byte  // the unmasked payload
}

// frameReader decodes frames from a stream, one at a time.
type frameReader struct {
	r          *bufio.Reader
	maxPayload uint64   // frames with a longer payload are refused
	head       [14]byte // the longest header: 2 + 8 bytes of length + 4 of mask key
}

// next reads one frame, following the layout of RFC 6455 section 5.2:
//
//	byte 0:     FIN, RSV1, RSV2, RSV3, then a 4-bit opcode
//	byte 1:     MASK, then a 7-bit payload length
//	            (126: a 16-bit length follows; 127: a 64-bit length follows)
//	next 0/2/8: the extended payload length, in network byte order
//	next 0/4:   the masking key, if MASK is set
//	the rest:   the payload
//
// TCP may deliver a frame in pieces, or several frames at once; reading
// each part with io.ReadFull takes care of both.
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
			return f, fmt.Errorf("length %d sent in the 16-bit form, which is for 126 to 65535 (RFC 6455 section 5.2)", length)
		}
	case 127:
		h = fr.head[:10]
		if _, err := io.ReadFull(fr.r, h[2:]); err != nil {
			return f, unexpected(err)
		}
		length = binary.BigEndian.Uint64(h[2:])
		if length>>63 != 0 {
			return f, fmt.Errorf("64-bit length with the most significant bit set (RFC 6455 section 5.2)")
		}
		if length <= 0xFFFF {
			return f, fmt.Errorf("length %d sent in the 64-bit form, which is for 65536 and up (RFC 6455 section 5.2)", length)
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
	f.header = h

	// Only now, with the length checked against the limit, is memory set
	// aside for the payload, and only as fast as the payload arrives: the
	// length is what the peer declared, and a peer may declare 1 MiB and
	// send one byte. io.ReadAll grows its buffer with the bytes it reads,
	// and the LimitReader stops it at the end of this frame.
	payload, err := io.ReadAll(io.LimitReader(fr.r, int64(length)))
	if err != nil {
		return f, err
	}
	if uint64(len(payload)) < length {
		return f, io.ErrUnexpectedEOF // the peer hung up inside the payload
	}
	mask(f.maskKey, payload) // check has refused unmasked frames
	f.payload = payload
	return f, nil
}

// check applies the rules a server enforces on every frame from a client,
// before reading its payload.
func (f *frame) check(length, maxPayload uint64) error {
	switch {
	case !f.masked:
		return fmt.Errorf("client frame not masked (RFC 6455 section 5.1)")
	case f.rsv != 0:
		return fmt.Errorf("RSV bits %03b set, but no extension was negotiated (RFC 6455 section 5.2)", f.rsv>>4)
	case f.opcode > opBinary && f.opcode < opClose || f.opcode > opPong:
		return fmt.Errorf("unknown opcode 0x%X (RFC 6455 section 5.2)", f.opcode)
	case f.opcode >= opClose && length > 125:
		return fmt.Errorf("control frame with a %d-byte payload; the limit is 125 (RFC 6455 section 5.5)", length)
	case f.opcode >= opClose && !f.fin:
		return fmt.Errorf("fragmented control frame (RFC 6455 section 5.5)")
	case length > maxPayload:
		return fmt.Errorf("payload of %d bytes is over this server's limit of %d", length, maxPayload)
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

// mask XORs b with the 4-byte key in place (RFC 6455 section 5.3): byte i
// is XORed with byte i mod 4 of the key. Masking twice gives back the
// original, so the same function masks and unmasks.
func mask(key [4]byte, b []byte) {
	for i := range b {
		b[i] ^= key[i%4]
	}
}
