package main

// Conformance tests for /echo, grouped like the categories of the
// Autobahn|Testsuite: a raw client sends exact bytes, and each case checks
// what comes back (echoes, pongs, the close frame and its code), that the
// server then closes the TCP connection, and that it still serves a fresh
// connection afterwards. RFC 6455 is the reference for every expectation.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

// The first bytes of the frames the cases send: FIN, RSV1-3 and the opcode.
const (
	finText   = 0x81
	finBinary = 0x82
	finCont   = 0x80
	finClose  = 0x88
	finPing   = 0x89
	finPong   = 0x8A
	moreText  = 0x01 // a text frame with more fragments to come
	moreBin   = 0x02
	moreCont  = 0x00

	// noStatus is the code of a close frame without a payload (RFC 6455
	// section 7.1.5): a case that wants it wants an empty close frame.
	noStatus = 1005
)

// confKey masks every frame the cases send, so that the bytes on the wire
// are the same from run to run. It is not zero, so that a server that
// forgets to unmask is caught.
var confKey = [4]byte{0x37, 0xFA, 0x21, 0x3D}

// clientFrame encodes one client frame: masked, with the shortest length encoding.
func clientFrame(first byte, payload []byte) []byte {
	return booktest.ClientFrame(first, payload, confKey)
}

// joined encodes frames and joins them, so that they go out in one write.
func joined(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// closeBody is a close frame's payload: a status code and a reason.
func closeBody(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// chop cuts b into pieces of at most n bytes, one write each.
func chop(b []byte, n int) [][]byte {
	var pieces [][]byte
	for len(b) > n {
		pieces = append(pieces, b[:n])
		b = b[n:]
	}
	return append(pieces, b)
}

// pattern is a payload that repeats: payloads of any size are quick to
// make from it, and quick to mask (see frame), which matters for the
// 16 MiB cases under the race detector.
type pattern []byte

var (
	// letters make text; allBytes make binary messages with every byte
	// value, over a period that is not a multiple of the 4-byte mask key,
	// so that a masking mistake cannot hide.
	letters  = pattern("abcdefghijklmnopqrstuvwxyz")
	allBytes = func() pattern {
		p := make(pattern, 257)
		for i := range p {
			p[i] = byte(i * 7)
		}
		return p
	}()
)

// of returns n bytes of the pattern, starting at offset into it.
func (p pattern) of(offset, n int) []byte {
	offset %= len(p)
	rotated := append(append([]byte{}, p[offset:]...), p[:offset]...)
	return bytes.Repeat(rotated, n/len(p)+1)[:n]
}

// frame encodes what clientFrame(first, p.of(offset, n)) does, without masking a
// byte at a time: the masked payload repeats every lcm(len(p), 4) bytes,
// so one period is masked and then repeated.
func (p pattern) frame(first byte, offset, n int) []byte {
	period := len(p)
	for period%4 != 0 {
		period += len(p)
	}
	unit := p.of(offset, period)
	for i := range unit {
		unit[i] ^= confKey[i%4]
	}
	header := []byte{first, 0x80}
	switch {
	case n <= 125:
		header[1] |= byte(n)
	case n <= 0xFFFF:
		header[1] |= 126
		header = binary.BigEndian.AppendUint16(header, uint16(n))
	default:
		header[1] |= 127
		header = binary.BigEndian.AppendUint64(header, uint64(n))
	}
	header = append(header, confKey[:]...)
	return append(header, bytes.Repeat(unit, n/period+1)[:n]...)
}

// fragmented encodes n bytes of the pattern as a message in fragments of
// size bytes: the first with opcode, the rest continuations.
func (p pattern) fragmented(opcode byte, n, size int) []byte {
	var out []byte
	for offset := 0; offset == 0 || offset < n; offset += size {
		first := byte(moreCont)
		if offset == 0 {
			first = opcode
		}
		if offset+size >= n {
			first |= 0x80
		}
		out = append(out, p.frame(first, offset, min(size, n-offset))...)
	}
	return out
}

func textOf(n int) []byte   { return letters.of(0, n) }
func binaryOf(n int) []byte { return allBytes.of(0, n) }

// fragmentsOf splits payload into frames of at most size bytes each: the
// first with opcode, the rest continuations, FIN on the last only.
func fragmentsOf(opcode byte, payload []byte, size int) []byte {
	var out []byte
	for first := true; first || len(payload) > 0; first = false {
		n := min(size, len(payload))
		b := byte(moreCont)
		if first {
			b = opcode
		}
		if n == len(payload) {
			b |= 0x80
		}
		out = append(out, clientFrame(b, payload[:n])...)
		payload = payload[n:]
	}
	return out
}

// reply is a message or control frame the server must send back.
type reply struct {
	opcode  byte
	payload []byte
}

func textMsg(s string) reply     { return reply{opText, []byte(s)} }
func binaryMsgOf(b []byte) reply { return reply{opBinary, b} }
func pongMsg(b []byte) reply     { return reply{opPong, b} }

// exchange is one conformance case.
type exchange struct {
	name       string
	send       [][]byte      // written in order, one write each
	pause      time.Duration // between two writes
	pauseEvery int           // pause after every pauseEvery writes only (0: 1)
	want       []reply       // what the server must send back first, in order
	// closeCode is the code of the close frame the server must send after
	// want (noStatus: an empty close frame). 0 means the connection must
	// stay open: the client then closes it with 1000, which the server must
	// echo, so that nothing unexpected can hide after want either.
	closeCode int
}

// runExchanges runs each case on its own connection, as a subtest.
func runExchanges(t *testing.T, addr string, cases []exchange) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runExchange(t, addr, c) })
	}
}

// runExchange sends a case's bytes and checks the server's answer, then that the
// server still serves a new connection.
func runExchange(t *testing.T, addr string, c exchange) {
	ws := booktest.DialWS(t, addr, "/echo")
	// Write from another goroutine, so that a large case cannot deadlock
	// with the server's answer, and a server that fails the connection
	// early cannot block the test.
	written := make(chan error, 1)
	go func() { written <- writeAll(ws, c.send, c.pause, max(c.pauseEvery, 1)) }()

	for i, w := range c.want {
		op, payload, err := ws.ReadMessage()
		require.NoError(t, err, "reading reply %d of %d, want %s (a timeout: the server sent nothing)", i+1, len(c.want), describeFrame(w.opcode, w.payload))
		require.Equal(t, w.opcode, op, "reply %d: want %s, got %s", i+1, describeFrame(w.opcode, w.payload), describeFrame(op, payload))
		require.True(t, bytes.Equal(w.payload, payload), "reply %d: want %s, got %s", i+1, describeFrame(w.opcode, w.payload), describeFrame(op, payload))
	}
	if c.closeCode == 0 {
		require.NoError(t, <-written)
		require.NoError(t, ws.Send(finClose, closeBody(closeNormal, "done")))
		expectServerClose(t, ws, closeNormal)
	} else {
		expectServerClose(t, ws, c.closeCode)
		ws.Close()
		<-written // an error is fine: the server may close before the last byte
	}
	stillServes(t, addr)
}

// writeAll writes the pieces in order, sleeping pause after every
// every-th write, so that the server sees them arrive apart.
func writeAll(ws *booktest.WS, pieces [][]byte, pause time.Duration, every int) error {
	ws.SetWriteDeadline(time.Now().Add(20 * time.Second))
	for i, p := range pieces {
		if i > 0 && i%every == 0 && pause > 0 {
			time.Sleep(pause)
		}
		if _, err := ws.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// describeFrame prints a frame for a failure message, briefly when it is big.
func describeFrame(opcode byte, payload []byte) string {
	name := map[byte]string{opText: "text", opBinary: "binary", opClose: "close", opPing: "ping", opPong: "pong"}[opcode]
	if name == "" {
		name = fmt.Sprintf("opcode %d", opcode)
	}
	switch {
	case opcode == opClose && len(payload) >= 2:
		return fmt.Sprintf("close %d %q", booktest.CloseCode(payload), payload[2:])
	case len(payload) <= 40:
		return fmt.Sprintf("%s %q", name, payload)
	}
	return fmt.Sprintf("%s of %d bytes", name, len(payload))
}

// expectServerClose reads the server's close frame and checks its code, then
// that the server closes the TCP connection after it (RFC 6455 section
// 7.1.1: the server closes first).
func expectServerClose(t *testing.T, ws *booktest.WS, code int) {
	t.Helper()
	op, payload, err := ws.ReadMessage()
	require.NoError(t, err, "want a close frame with code %d (a timeout: the server sent nothing, and waited for more)", code)
	require.Equal(t, byte(opClose), op, "want close %d, got %s", code, describeFrame(op, payload))
	if code == noStatus {
		require.Empty(t, payload, "want an empty close frame, got %s", describeFrame(op, payload))
	} else {
		require.Equal(t, code, booktest.CloseCode(payload), "got %s", describeFrame(op, payload))
		assert.True(t, utf8.Valid(payload[2:]), "close reason %q is not UTF-8", payload[2:])
	}
	f, err := ws.ReadFrame()
	require.Error(t, err, "want the TCP connection closed after the close frame, got %s", describeFrame(f.Opcode, f.Payload))
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server did not close the TCP connection after its close frame: %v", err)
}

// stillServes checks that the server answers a fresh connection.
func stillServes(t *testing.T, addr string) {
	t.Helper()
	ws := booktest.DialWS(t, addr, "/echo")
	require.NoError(t, ws.Send(finText, []byte("ok")))
	op, payload, err := ws.ReadMessage()
	require.NoError(t, err, "a fresh connection after the case")
	require.Equal(t, "text \"ok\"", describeFrame(op, payload), "a fresh connection after the case")
	require.NoError(t, ws.Send(finClose, closeBody(closeNormal, "")))
	expectServerClose(t, ws, closeNormal)
}

// TestConformanceFraming: text and binary messages of the sizes around the
// three length encodings of RFC 6455 section 5.2, in one write and chopped
// into small writes.
func TestConformanceFraming(t *testing.T) {
	addr, _ := start(t, nil)
	t.Run("the test's fast frame encoding matches booktest.ClientFrame", func(t *testing.T) {
		for _, n := range []int{0, 1, 3, 4, 5, 125, 126, 300, 65535, 65536, 70001} {
			for _, p := range []pattern{letters, allBytes} {
				for _, offset := range []int{0, 1, 7, 1000} {
					require.Equal(t, clientFrame(finBinary, p.of(offset, n)), p.frame(finBinary, offset, n), "%d bytes at offset %d", n, offset)
				}
			}
		}
		msg := append(binaryOf(70001), 0)[:70001]
		require.Equal(t, fragmentsOf(moreBin, msg, 1000), allBytes.fragmented(moreBin, 70001, 1000))
		require.Equal(t, fragmentsOf(moreBin, nil, 1000), allBytes.fragmented(moreBin, 0, 1000))
	})
	var cases []exchange
	for _, n := range []int{0, 125, 126, 127, 128, 65535, 65536, 65537, 1 << 20} {
		for _, kind := range []struct {
			name   string
			first  byte
			opcode byte
			p      pattern
		}{{"text", finText, opText, letters}, {"binary", finBinary, opBinary, allBytes}} {
			payload, frame := kind.p.of(0, n), kind.p.frame(kind.first, 0, n)
			cases = append(cases, exchange{
				name: fmt.Sprintf("%s %d bytes", kind.name, n),
				send: [][]byte{frame},
				want: []reply{{kind.opcode, payload}},
			})
			chopped := exchange{
				name: fmt.Sprintf("%s %d bytes chopped", kind.name, n),
				want: []reply{{kind.opcode, payload}},
			}
			if len(frame) <= 200 {
				chopped.send, chopped.pause, chopped.pauseEvery = chop(frame, 1), 100*time.Microsecond, 4
			} else {
				chopped.send, chopped.pause, chopped.pauseEvery = chop(frame, 997), 200*time.Microsecond, 16
			}
			cases = append(cases, chopped)
		}
	}
	unmasked := []byte{finText, 5, 'h', 'e', 'l', 'l', 'o'}
	cases = append(cases,
		exchange{
			name: "two messages in one write echo in order",
			send: [][]byte{joined(clientFrame(finText, []byte("first")), clientFrame(finBinary, []byte{0, 1, 2}))},
			want: []reply{textMsg("first"), binaryMsgOf([]byte{0, 1, 2})},
		},
		exchange{
			// RFC 6455 section 5.1: a server MUST close the connection
			// upon a frame that is not masked.
			name:      "unmasked frame fails with 1002",
			send:      [][]byte{joined(clientFrame(finText, []byte("before")), unmasked)},
			want:      []reply{textMsg("before")},
			closeCode: closeProtocolError,
		},
	)
	runExchanges(t, addr, cases)
}

// TestConformancePingPong: RFC 6455 sections 5.5.2 and 5.5.3.
func TestConformancePingPong(t *testing.T) {
	addr, _ := start(t, nil)
	ping125 := textOf(125)
	binaryPayload := []byte{0x00, 0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0x00, 0xFF, 0x80}
	var tenPings [][]byte
	var tenPongs []reply
	for i := range 10 {
		p := []byte(fmt.Sprintf("ping %d", i))
		tenPings = append(tenPings, clientFrame(finPing, p))
		tenPongs = append(tenPongs, pongMsg(p))
	}
	runExchanges(t, addr, []exchange{
		{name: "empty ping answered with empty pong", send: [][]byte{clientFrame(finPing, nil)}, want: []reply{pongMsg([]byte{})}},
		{name: "ping with text payload", send: [][]byte{clientFrame(finPing, []byte("Hello, world!"))}, want: []reply{pongMsg([]byte("Hello, world!"))}},
		{name: "ping with binary payload", send: [][]byte{clientFrame(finPing, binaryPayload)}, want: []reply{pongMsg(binaryPayload)}},
		{name: "ping with 125-byte payload", send: [][]byte{clientFrame(finPing, ping125)}, want: []reply{pongMsg(ping125)}},
		{name: "ping with 125-byte payload chopped into 1-byte writes", send: chop(clientFrame(finPing, ping125), 1), pause: 100 * time.Microsecond, pauseEvery: 4, want: []reply{pongMsg(ping125)}},
		{
			// Section 5.5: control frames have payloads of 125 bytes or less.
			name:      "ping with 126-byte payload fails with 1002",
			send:      [][]byte{joined(clientFrame(finText, []byte("before")), clientFrame(finPing, textOf(126)))},
			want:      []reply{textMsg("before")},
			closeCode: closeProtocolError,
		},
		{name: "unsolicited empty pong ignored", send: [][]byte{joined(clientFrame(finPong, nil), clientFrame(finText, []byte("after pong")))}, want: []reply{textMsg("after pong")}},
		{name: "unsolicited pong with payload ignored", send: [][]byte{joined(clientFrame(finPong, []byte("unsolicited")), clientFrame(finText, []byte("after pong")))}, want: []reply{textMsg("after pong")}},
		{name: "unsolicited pong then ping answered", send: [][]byte{clientFrame(finPong, []byte("unsolicited")), clientFrame(finPing, []byte("ping"))}, want: []reply{pongMsg([]byte("ping"))}},
		{name: "10 pings in one write answered in order", send: [][]byte{joined(tenPings...)}, want: tenPongs},
		{name: "10 pings in separate writes answered in order", send: tenPings, pause: time.Millisecond, want: tenPongs},
		{name: "ping and text in one write answered in order", send: [][]byte{joined(clientFrame(finText, []byte("t")), clientFrame(finPing, []byte("p")), clientFrame(finText, []byte("u")))}, want: []reply{textMsg("t"), pongMsg([]byte("p")), textMsg("u")}},
		{
			// Section 5.5: control frames MUST NOT be fragmented.
			name:      "fragmented ping fails with 1002",
			send:      [][]byte{joined(clientFrame(0x09, []byte("frag1")), clientFrame(finCont, []byte("frag2")))},
			closeCode: closeProtocolError,
		},
		{
			name:      "fragmented pong fails with 1002",
			send:      [][]byte{joined(clientFrame(0x0A, []byte("frag1")), clientFrame(finCont, []byte("frag2")))},
			closeCode: closeProtocolError,
		},
	})
}

// TestConformanceReservedBits: RSV1-3 must be 0 unless an extension was
// negotiated (RFC 6455 section 5.2), and none is here. A valid message sent
// before the bad frame is echoed, and a ping after it is not answered.
func TestConformanceReservedBits(t *testing.T) {
	addr, _ := start(t, nil)
	var cases []exchange
	for rsv := byte(1); rsv <= 7; rsv++ {
		bits := rsv << 4
		var names []string
		for i, name := range []string{"RSV3", "RSV2", "RSV1"} {
			if rsv&(1<<i) != 0 {
				names = append([]string{name}, names...)
			}
		}
		for _, bad := range []struct {
			name   string
			frames []byte
		}{
			{"text", clientFrame(finText|bits, []byte("bad"))},
			{"binary", clientFrame(finBinary|bits, []byte{0xBA, 0xD0})},
			{"ping", clientFrame(finPing|bits, []byte("bad"))},
			{"pong", clientFrame(finPong|bits, []byte("bad"))},
			{"close", clientFrame(finClose|bits, closeBody(closeNormal, "bad"))},
			{"continuation", joined(clientFrame(moreText, []byte("frag1")), clientFrame(finCont|bits, []byte("frag2")))},
		} {
			cases = append(cases, exchange{
				name:      fmt.Sprintf("%s on %s fails with 1002", strings.Join(names, "+"), bad.name),
				send:      [][]byte{joined(clientFrame(finText, []byte("hello")), bad.frames, clientFrame(finPing, []byte("after")))},
				want:      []reply{textMsg("hello")},
				closeCode: closeProtocolError,
			})
		}
	}
	runExchanges(t, addr, cases)
}

// TestConformanceOpcodes: opcodes 0x3-0x7 and 0xB-0xF are reserved (RFC 6455
// section 5.2), and a frame that uses one fails the connection.
func TestConformanceOpcodes(t *testing.T) {
	addr, _ := start(t, nil)
	var cases []exchange
	for _, op := range []byte{0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		kind := "non-control"
		if op >= 0x8 {
			kind = "control"
		}
		cases = append(cases,
			exchange{
				name:      fmt.Sprintf("reserved %s opcode 0x%X empty fails with 1002", kind, op),
				send:      [][]byte{joined(clientFrame(finText, []byte("hello")), clientFrame(0x80|op, nil), clientFrame(finPing, []byte("after")))},
				want:      []reply{textMsg("hello")},
				closeCode: closeProtocolError,
			},
			exchange{
				name:      fmt.Sprintf("reserved %s opcode 0x%X with payload fails with 1002", kind, op),
				send:      [][]byte{joined(clientFrame(finText, []byte("hello")), clientFrame(0x80|op, []byte("reserved")), clientFrame(finPing, []byte("after")))},
				want:      []reply{textMsg("hello")},
				closeCode: closeProtocolError,
			},
		)
	}
	runExchanges(t, addr, cases)
}

// TestConformanceFragmentation: RFC 6455 section 5.4.
func TestConformanceFragmentation(t *testing.T) {
	addr, _ := start(t, nil)
	msg := []byte("a fragmented message")
	var byteFragments [][]byte
	for i := range msg {
		first := byte(moreCont)
		if i == 0 {
			first = moreText
		}
		if i == len(msg)-1 {
			first |= 0x80
		}
		byteFragments = append(byteFragments, clientFrame(first, msg[i:i+1]))
	}
	withPings := joined(
		clientFrame(moreText, []byte("frag1")), clientFrame(finPing, []byte("p1")),
		clientFrame(moreCont, []byte("frag2")), clientFrame(finPing, []byte("p2")), clientFrame(finPong, []byte("ignored")),
		clientFrame(finCont, []byte("frag3")))
	runExchanges(t, addr, []exchange{
		{name: "text in 2 fragments", send: [][]byte{joined(clientFrame(moreText, []byte("frag1")), clientFrame(finCont, []byte("frag2")))}, want: []reply{textMsg("frag1frag2")}},
		{name: "binary in 2 fragments", send: [][]byte{joined(clientFrame(moreBin, []byte{0, 1}), clientFrame(finCont, []byte{0xFE, 0xFF}))}, want: []reply{binaryMsgOf([]byte{0, 1, 0xFE, 0xFF})}},
		{name: "text in 1-byte fragments", send: [][]byte{joined(byteFragments...)}, want: []reply{textMsg(string(msg))}},
		{name: "text in 1-byte fragments, one write each", send: byteFragments, pause: time.Millisecond, want: []reply{textMsg(string(msg))}},
		{name: "binary in 1000 fragments", send: [][]byte{fragmentsOf(moreBin, binaryOf(100_000), 100)}, want: []reply{binaryMsgOf(binaryOf(100_000))}},
		{
			name: "text with empty fragments",
			send: [][]byte{joined(clientFrame(moreText, nil), clientFrame(moreCont, []byte("abc")), clientFrame(moreCont, nil), clientFrame(moreCont, []byte("def")), clientFrame(finCont, nil))},
			want: []reply{textMsg("abcdef")},
		},
		{name: "empty text in empty fragments", send: [][]byte{joined(clientFrame(moreText, nil), clientFrame(moreCont, nil), clientFrame(finCont, nil))}, want: []reply{textMsg("")}},
		{name: "empty binary in empty fragments", send: [][]byte{joined(clientFrame(moreBin, nil), clientFrame(finCont, nil))}, want: []reply{binaryMsgOf([]byte{})}},
		{
			name: "ping between fragments answered, message whole",
			send: [][]byte{joined(clientFrame(moreText, []byte("frag1")), clientFrame(finPing, []byte("ping payload")), clientFrame(finCont, []byte("frag2")))},
			want: []reply{pongMsg([]byte("ping payload")), textMsg("frag1frag2")},
		},
		{
			name:  "ping between fragments in separate writes",
			send:  [][]byte{clientFrame(moreText, []byte("frag1")), clientFrame(finPing, []byte("ping payload")), clientFrame(finCont, []byte("frag2"))},
			pause: 5 * time.Millisecond,
			want:  []reply{pongMsg([]byte("ping payload")), textMsg("frag1frag2")},
		},
		{
			name: "125-byte ping between fragments does not overwrite the message",
			send: [][]byte{joined(clientFrame(moreBin, binaryOf(300)), clientFrame(finPing, textOf(125)), clientFrame(finCont, binaryOf(10)))},
			want: []reply{pongMsg(textOf(125)), binaryMsgOf(append(binaryOf(300), binaryOf(10)...))},
		},
		{name: "pings and pong between many fragments", send: [][]byte{withPings}, want: []reply{pongMsg([]byte("p1")), pongMsg([]byte("p2")), textMsg("frag1frag2frag3")}},
		{
			name: "messages before and after a fragmented one echo in order",
			send: [][]byte{joined(clientFrame(finText, []byte("one")), clientFrame(moreBin, []byte{2}), clientFrame(finCont, []byte{2}), clientFrame(finText, []byte("three")))},
			want: []reply{textMsg("one"), binaryMsgOf([]byte{2, 2}), textMsg("three")},
		},
		{name: "final continuation with nothing to continue fails with 1002", send: [][]byte{clientFrame(finCont, []byte("orphan"))}, closeCode: closeProtocolError},
		{name: "non-final continuation with nothing to continue fails with 1002", send: [][]byte{clientFrame(moreCont, []byte("orphan"))}, closeCode: closeProtocolError},
		{
			name:      "continuation after a complete message fails with 1002",
			send:      [][]byte{joined(clientFrame(finText, []byte("whole")), clientFrame(finCont, []byte("orphan")))},
			want:      []reply{textMsg("whole")},
			closeCode: closeProtocolError,
		},
		{
			name:      "continuation after a fragmented message ended fails with 1002",
			send:      [][]byte{joined(clientFrame(moreText, []byte("f1")), clientFrame(finCont, []byte("f2")), clientFrame(moreCont, []byte("f3")), clientFrame(finCont, []byte("f4")))},
			want:      []reply{textMsg("f1f2")},
			closeCode: closeProtocolError,
		},
		{name: "new text frame inside a fragmented message fails with 1002", send: [][]byte{joined(clientFrame(moreText, []byte("frag1")), clientFrame(finText, []byte("new")))}, closeCode: closeProtocolError},
		{name: "new non-final text frame inside a fragmented message fails with 1002", send: [][]byte{joined(clientFrame(moreText, []byte("frag1")), clientFrame(moreText, []byte("new")))}, closeCode: closeProtocolError},
		{name: "binary frame inside a fragmented text fails with 1002", send: [][]byte{joined(clientFrame(moreText, []byte("frag1")), clientFrame(finBinary, []byte("new")))}, closeCode: closeProtocolError},
		{
			name:      "fragmented close fails with 1002",
			send:      [][]byte{joined(clientFrame(0x08, closeBody(closeNormal, "frag")), clientFrame(finCont, []byte("ment")))},
			closeCode: closeProtocolError,
		},
		{
			// Section 5.5: control frames may come between fragments, a close
			// too; the unfinished message is dropped.
			name:      "close between fragments ends the connection",
			send:      [][]byte{joined(clientFrame(moreText, []byte("frag1")), clientFrame(finClose, closeBody(closeNormal, "")), clientFrame(finCont, []byte("frag2")))},
			closeCode: closeNormal,
		},
	})
}

// TestConformanceUTF8: a text message must be UTF-8 (RFC 6455 sections 5.6
// and 8.1), and a server that finds it is not fails the connection with
// 1007 (section 7.4.1), at the first fragment that makes it invalid.
func TestConformanceUTF8(t *testing.T) {
	addr, _ := start(t, nil)
	valid := []struct{ name, s string }{
		{"greek", "κόσμε"},
		{"e acute", "\u00e9"},
		{"emoji", "😀 WebSocket 🎉"},
		{"mixed scripts", "Hello-µ@ßöäüàá-UTF-8!! 日本語"},
		{"U+0000", "\x00"},
		{"U+007F", "\x7f"},
		{"U+0080", "\xc2\x80"},
		{"U+07FF", "\xdf\xbf"},
		{"U+0800", "\xe0\xa0\x80"},
		{"U+D7FF", "\xed\x9f\xbf"},
		{"U+E000", "\xee\x80\x80"},
		{"U+FFFD", "\xef\xbf\xbd"},
		{"U+FFFE noncharacter", "\xef\xbf\xbe"},
		{"U+FFFF noncharacter", "\xef\xbf\xbf"},
		{"U+10000", "\xf0\x90\x80\x80"},
		{"U+10FFFF", "\xf4\x8f\xbf\xbf"},
	}
	invalid := []struct {
		name, s   string
		truncated bool // a valid start cut short: only the end of the message makes it invalid
	}{
		{name: "lone continuation byte", s: "\x80"},
		{name: "continuation bytes", s: "\x80\xbf\x80"},
		{name: "lone start byte then space", s: "\xc0 "},
		{name: "overlong slash", s: "\xc0\xaf"},
		{name: "overlong NUL", s: "\xc0\x80"},
		{name: "overlong 3-byte slash", s: "\xe0\x80\xaf"},
		{name: "overlong 4-byte slash", s: "\xf0\x80\x80\xaf"},
		{name: "high surrogate", s: "\xed\xa0\x80"},
		{name: "low surrogate", s: "\xed\xbf\xbf"},
		{name: "surrogate pair", s: "\xed\xa0\x80\xed\xb0\x80"},
		{name: "over U+10FFFF", s: "\xf4\x90\x80\x80"},
		{name: "5-byte sequence", s: "\xf8\x88\x80\x80\x80"},
		{name: "6-byte sequence", s: "\xfc\x84\x80\x80\x80\x80"},
		{name: "byte FE", s: "\xfe"},
		{name: "byte FF", s: "\xff"},
		{name: "greek then surrogate", s: "κόσμε\xed\xa0\x80edited"},
		{name: "truncated 2-byte sequence at the end", s: "κόσμ\xce", truncated: true},
		{name: "truncated 3-byte sequence at the end", s: "ab\xe1\xbd", truncated: true},
		{name: "truncated 4-byte sequence at the end", s: "ab\xf0\x90\x80", truncated: true},
	}
	var cases []exchange
	for _, v := range valid {
		b := []byte(v.s)
		cases = append(cases,
			exchange{name: "valid " + v.name, send: [][]byte{clientFrame(finText, b)}, want: []reply{textMsg(v.s)}},
			exchange{name: "valid " + v.name + " in 1-byte fragments", send: [][]byte{fragmentsOf(moreText, b, 1)}, want: []reply{textMsg(v.s)}},
		)
		if len(b) > 1 && len(b) <= 4 { // every split of one character
			for i := 1; i < len(b); i++ {
				cases = append(cases, exchange{
					name: fmt.Sprintf("valid %s split after byte %d", v.name, i),
					send: [][]byte{clientFrame(moreText, b[:i]), clientFrame(finCont, b[i:])},
					want: []reply{textMsg(v.s)},
				})
			}
		}
	}
	for _, v := range invalid {
		b := []byte(v.s)
		cases = append(cases,
			exchange{name: "invalid " + v.name + " fails with 1007", send: [][]byte{clientFrame(finText, b)}, closeCode: closeInvalidData},
			exchange{
				name:      "invalid " + v.name + " after a valid fragment fails with 1007",
				send:      [][]byte{joined(clientFrame(moreText, []byte("κόσμε")), clientFrame(finCont, b))},
				closeCode: closeInvalidData,
			},
			exchange{
				name:      "invalid " + v.name + " in 1-byte fragments fails with 1007",
				send:      [][]byte{fragmentsOf(moreText, b, 1)},
				closeCode: closeInvalidData,
			},
			exchange{
				name:      "invalid " + v.name + " in binary echoes",
				send:      [][]byte{clientFrame(finBinary, b)},
				want:      []reply{binaryMsgOf(b)},
				closeCode: 0,
			},
		)
		if v.truncated {
			// Valid so far: the message only fails when it ends.
			cases = append(cases, exchange{
				name:      "invalid " + v.name + " then empty final fragment fails with 1007",
				send:      [][]byte{clientFrame(moreText, b), clientFrame(finCont, nil)},
				pause:     5 * time.Millisecond,
				closeCode: closeInvalidData,
			})
		} else {
			// Fail fast: the final fragment is never sent, so the server
			// must decide on the fragment that broke the encoding.
			cases = append(cases, exchange{
				name:      "invalid " + v.name + " in a non-final fragment fails fast with 1007",
				send:      [][]byte{clientFrame(moreText, []byte("ok ")), clientFrame(moreCont, b)},
				pause:     5 * time.Millisecond,
				closeCode: closeInvalidData,
			})
		}
	}
	cases = append(cases,
		exchange{
			// The valid start of a character must not fail a fragment; the
			// next byte, which makes it impossible, must.
			name:      "fail fast when a split character turns out over U+10FFFF",
			send:      [][]byte{clientFrame(moreText, []byte("κόσμε\xf4")), clientFrame(moreCont, []byte("\x90\x80\x80"))},
			pause:     5 * time.Millisecond,
			closeCode: closeInvalidData,
		},
		exchange{
			name:      "fail fast when a split character turns out a surrogate",
			send:      [][]byte{clientFrame(moreText, []byte("\xed")), clientFrame(moreCont, []byte("\xa0")), clientFrame(moreCont, []byte("\x80"))},
			pause:     5 * time.Millisecond,
			closeCode: closeInvalidData,
		},
		exchange{
			name: "valid message split inside characters in many places",
			send: [][]byte{joined(clientFrame(moreText, []byte("κ\xcf")), clientFrame(moreCont, []byte("\x8c\xcf\x83\xf0\x9f")), clientFrame(moreCont, []byte("\x98")), clientFrame(finCont, []byte("\x80!")))},
			want: []reply{textMsg("κόσ😀!")},
		},
	)
	runExchanges(t, addr, cases)
}

// TestConformanceClose: the closing handshake, RFC 6455 sections 5.5.1, 7
// and 7.4. The server answers a close frame with the same status code (an
// empty close frame when it got none), then closes the TCP connection.
func TestConformanceClose(t *testing.T) {
	addr, _ := start(t, nil)
	cases := []exchange{
		{name: "empty close answered with empty close", send: [][]byte{clientFrame(finClose, nil)}, closeCode: noStatus},
		{name: "close 1000 answered with 1000", send: [][]byte{clientFrame(finClose, closeBody(1000, ""))}, closeCode: 1000},
		{name: "close 1000 with reason answered with 1000", send: [][]byte{clientFrame(finClose, closeBody(1000, "Hello World!"))}, closeCode: 1000},
		{name: "close with UTF-8 reason answered", send: [][]byte{clientFrame(finClose, closeBody(1000, "κόσμε 😀"))}, closeCode: 1000},
		{name: "close with 125-byte payload answered", send: [][]byte{clientFrame(finClose, closeBody(1000, string(textOf(123))))}, closeCode: 1000},
		{name: "close with 126-byte payload fails with 1002", send: [][]byte{clientFrame(finClose, closeBody(1000, string(textOf(124))))}, closeCode: closeProtocolError},
		{name: "close with 1-byte payload fails with 1002", send: [][]byte{clientFrame(finClose, []byte{0x03})}, closeCode: closeProtocolError},
		{name: "close reason not UTF-8 fails with 1007", send: [][]byte{clientFrame(finClose, closeBody(1000, "κόσμε\xed\xa0\x80edited"))}, closeCode: closeInvalidData},
		{name: "close reason truncated UTF-8 fails with 1007", send: [][]byte{clientFrame(finClose, closeBody(1000, "ab\xce"))}, closeCode: closeInvalidData},
		{
			name:      "close after a message: message echoed first",
			send:      [][]byte{joined(clientFrame(finText, []byte("before")), clientFrame(finClose, closeBody(1000, "")))},
			want:      []reply{textMsg("before")},
			closeCode: 1000,
		},
		{name: "text after close not echoed", send: [][]byte{joined(clientFrame(finClose, closeBody(1000, "")), clientFrame(finText, []byte("after close")))}, closeCode: 1000},
		{name: "ping after close not answered", send: [][]byte{joined(clientFrame(finClose, closeBody(1000, "")), clientFrame(finPing, []byte("after close")))}, closeCode: 1000},
		{name: "second close not answered", send: [][]byte{joined(clientFrame(finClose, closeBody(1000, "")), clientFrame(finClose, closeBody(1001, "")))}, closeCode: 1000},
		{
			name:      "text after close in a later write not echoed",
			send:      [][]byte{clientFrame(finClose, closeBody(1000, "")), clientFrame(finText, []byte("after close"))},
			pause:     5 * time.Millisecond,
			closeCode: 1000,
		},
		{
			name:      "close in the middle of a fragmented message",
			send:      [][]byte{clientFrame(moreText, []byte("frag1")), clientFrame(finClose, closeBody(1000, "")), clientFrame(finCont, []byte("frag2"))},
			pause:     5 * time.Millisecond,
			closeCode: 1000,
		},
	}
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		cases = append(cases, exchange{
			name:      fmt.Sprintf("valid code %d echoed", code),
			send:      [][]byte{clientFrame(finClose, closeBody(code, "reason"))},
			closeCode: code,
		})
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, exchange{
			name:      fmt.Sprintf("invalid code %d fails with 1002", code),
			send:      [][]byte{clientFrame(finClose, closeBody(code, "reason"))},
			closeCode: closeProtocolError,
		})
	}
	runExchanges(t, addr, cases)
}

// TestConformanceBigMessages: the largest message /echo takes is
// MaxMessage (16 MiB by default); a bigger one fails with 1009 (RFC 6455
// section 7.4.1), whether it comes in one frame or in fragments, and
// without the server setting memory aside for it.
func TestConformanceBigMessages(t *testing.T) {
	limit := defaultLimits.MaxMessage
	require.Equal(t, 16<<20, limit, "the cases below are sized for the default limit")
	addr, _ := start(t, nil)

	t.Run("header declaring 2^40 bytes fails with 1009 and allocates nothing", func(t *testing.T) {
		header := []byte{finBinary, 0x80 | 127}
		header = binary.BigEndian.AppendUint64(header, 1<<40)
		header = append(header, confKey[:]...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		runExchange(t, addr, exchange{send: [][]byte{header}, closeCode: closeTooBig})
		runtime.ReadMemStats(&after)
		grew := after.TotalAlloc - before.TotalAlloc
		t.Logf("allocated %d bytes in the whole process during the case", grew)
		assert.Less(t, grew, uint64(1<<20), "allocated %d bytes around a frame that declared 2^40 bytes and sent none", grew)
	})

	// Each case is built only when it runs: together they would hold
	// hundreds of megabytes.
	for _, c := range []struct {
		name string
		make func() exchange
	}{
		{"16 MiB text in one frame", func() exchange {
			return exchange{send: [][]byte{letters.frame(finText, 0, limit)}, want: []reply{{opText, textOf(limit)}}}
		}},
		{"16 MiB binary in one frame", func() exchange {
			return exchange{send: [][]byte{allBytes.frame(finBinary, 0, limit)}, want: []reply{{opBinary, binaryOf(limit)}}}
		}},
		{"16 MiB text in 64 KiB fragments", func() exchange {
			return exchange{send: [][]byte{letters.fragmented(moreText, limit, 64<<10)}, want: []reply{{opText, textOf(limit)}}}
		}},
		{"16 MiB binary in 64 KiB fragments", func() exchange {
			return exchange{send: [][]byte{allBytes.fragmented(moreBin, limit, 64<<10)}, want: []reply{{opBinary, binaryOf(limit)}}}
		}},
		{"16 MiB + 1 text in one frame fails with 1009", func() exchange {
			return exchange{send: [][]byte{letters.frame(finText, 0, limit+1)}, closeCode: closeTooBig}
		}},
		{"16 MiB + 1 binary in one frame fails with 1009", func() exchange {
			return exchange{send: [][]byte{allBytes.frame(finBinary, 0, limit+1)}, closeCode: closeTooBig}
		}},
		{"16 MiB + 1 text in 64 KiB fragments fails with 1009", func() exchange {
			return exchange{send: [][]byte{letters.fragmented(moreText, limit+1, 64<<10)}, closeCode: closeTooBig}
		}},
		{"16 MiB + 1 binary in 64 KiB fragments fails with 1009", func() exchange {
			return exchange{send: [][]byte{allBytes.fragmented(moreBin, limit+1, 64<<10)}, closeCode: closeTooBig}
		}},
		{"two 9 MiB fragments fail with 1009", func() exchange {
			// No frame is over the limit: only their sum is.
			return exchange{send: [][]byte{joined(allBytes.frame(moreBin, 0, 9<<20), allBytes.frame(finCont, 9<<20, 9<<20))}, closeCode: closeTooBig}
		}},
	} {
		t.Run(c.name, func(t *testing.T) { runExchange(t, addr, c.make()) })
	}
}
