package main

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// opcodeNames are the names RFC 6455 section 5.2 gives the opcodes.
var opcodeNames = map[byte]string{
	opContinuation: "continuation",
	opText:         "text",
	opBinary:       "binary",
	opClose:        "close",
	opPing:         "ping",
	opPong:         "pong",
}

// dissect explains a frame field by field, the way the terminal shows it:
// the bits of the first two bytes, the length form and why it was chosen,
// the masking key, and the payload before and after unmasking.
func dissect(f frame) string {
	var b strings.Builder
	h := f.header
	fmt.Fprintf(&b, "  byte 0      %08b  FIN=%d RSV1=%d RSV2=%d RSV3=%d opcode=0x%X (%s)\n",
		h[0], bit(f.fin), h[0]>>6&1, h[0]>>5&1, h[0]>>4&1, f.opcode, opcodeNames[f.opcode])

	length := len(f.payload)
	switch h[1] & 0x7F {
	case 126:
		fmt.Fprintf(&b, "  byte 1      %08b  MASK=%d length=126: the real length is in the next 2 bytes\n", h[1], bit(f.masked))
		fmt.Fprintf(&b, "  bytes 2-3   % x      length=%d (16-bit form, for 126 to 65535 bytes)\n", h[2:4], length)
	case 127:
		fmt.Fprintf(&b, "  byte 1      %08b  MASK=%d length=127: the real length is in the next 8 bytes\n", h[1], bit(f.masked))
		fmt.Fprintf(&b, "  bytes 2-9   % x  length=%d (64-bit form, for 65536 bytes and up)\n", h[2:10], length)
	default:
		fmt.Fprintf(&b, "  byte 1      %08b  MASK=%d length=%d (7-bit form, for 0 to 125 bytes)\n", h[1], bit(f.masked), length)
	}
	if f.masked {
		fmt.Fprintf(&b, "  mask key    % x\n", f.maskKey)
	}

	// Mask a copy of the start of the payload again to show what was on the
	// wire: masking is its own inverse.
	wire := append([]byte(nil), abbreviate(f.payload, 16)...)
	if f.masked {
		mask(f.maskKey, wire)
	}
	fmt.Fprintf(&b, "  payload     %d bytes\n", length)
	if length > 0 {
		fmt.Fprintf(&b, "    on the wire  % x%s\n", wire, more(length, 16))
		if f.opcode == opText && utf8.Valid(f.payload) {
			fmt.Fprintf(&b, "    unmasked     %q%s\n", abbreviate(f.payload, 60), more(length, 60))
		} else {
			fmt.Fprintf(&b, "    unmasked     % x%s\n", abbreviate(f.payload, 16), more(length, 16))
		}
	}
	return b.String()
}

func bit(b bool) int {
	if b {
		return 1
	}
	return 0
}

// abbreviate returns at most the first n bytes of p.
func abbreviate(p []byte, n int) []byte {
	return p[:min(len(p), n)]
}

// more says how much abbreviate left out.
func more(length, shown int) string {
	if length <= shown {
		return ""
	}
	return fmt.Sprintf(" ... (%d more bytes)", length-shown)
}

// messageSum follows the frames of one message. A sender may split a
// message into several frames (RFC 6455 section 5.4): the first carries the
// opcode, the rest are continuations, and the last has FIN set. Chromium
// does this with large messages. messageSum counts the frames and the
// bytes as they pass, without keeping the message.
type messageSum struct {
	opcode byte // of the message in progress; 0 between messages
	frames int
	size   int
}

// add takes the next data frame and, when it ends a message, returns a
// line that sums the message up.
func (m *messageSum) add(f frame) (string, error) {
	switch {
	case f.opcode == opContinuation && m.opcode == 0:
		return "", errors.New("continuation frame with no message to continue (RFC 6455 section 5.4)")
	case f.opcode != opContinuation && m.opcode != 0:
		return "", errors.New("new message started before the last one ended (RFC 6455 section 5.4)")
	case f.opcode != opContinuation:
		*m = messageSum{opcode: f.opcode}
	}
	m.frames++
	m.size += len(f.payload)
	if !f.fin {
		return "", nil
	}
	line := fmt.Sprintf("message: %s, %d bytes in %d frame(s)", opcodeNames[m.opcode], m.size, m.frames)
	m.opcode = 0
	return line, nil
}
