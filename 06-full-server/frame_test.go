package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

// The frames of RFC 6455 section 5.7, byte for byte.
var (
	rfcUnmaskedHello = []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}
	rfcMaskedHello   = []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	rfcHeader256     = []byte{0x82, 0x7E, 0x01, 0x00}
	rfcHeader65536   = []byte{0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}
)

var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d} // the key of the RFC's masked examples

// decoder reads frames from stream into a growing buffer, the way Conn
// does: a data frame's payload step by step, as it arrives.
type decoder struct {
	fr  frameReader
	buf []byte
}

func newDecoder(r io.Reader, maxPayload uint64) *decoder {
	return &decoder{fr: frameReader{r: bufio.NewReader(r), maxPayload: maxPayload}}
}

func (d *decoder) next() (frame, error) {
	f, err := d.fr.next()
	if err != nil || f.opcode >= opClose {
		return f, err
	}
	d.buf = d.buf[:0]
	for d.fr.remaining > 0 {
		if len(d.buf) == cap(d.buf) { // double, but never past what the frame needs
			bigger := make([]byte, len(d.buf), min(max(2*cap(d.buf), 64), len(d.buf)+int(d.fr.remaining)))
			copy(bigger, d.buf)
			d.buf = bigger
		}
		n, err := d.fr.readPayload(d.buf[len(d.buf):cap(d.buf)])
		d.buf = d.buf[:len(d.buf)+n]
		if err != nil {
			return f, err
		}
	}
	f.payload = d.buf
	return f, nil
}

func TestDecodeTheRFCExamples(t *testing.T) {
	f, err := newDecoder(bytes.NewReader(rfcMaskedHello), 1<<20).next()
	require.NoError(t, err)
	assert.True(t, f.fin)
	assert.Equal(t, byte(opText), f.opcode)
	assert.Equal(t, testKey, f.maskKey)
	assert.Equal(t, "Hello", string(f.payload))

	for _, header := range [][]byte{rfcHeader256, rfcHeader65536} {
		payload := make([]byte, 256)
		if len(header) == 10 {
			payload = make([]byte, 65536)
		}
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		f, err := newDecoder(bytes.NewReader(booktest.ClientFrame(header[0], payload, testKey)), 1<<20).next()
		require.NoError(t, err)
		assert.Equal(t, payload, f.payload)
	}
}

func TestDecodeOneByteAtATime(t *testing.T) {
	stream := append(append([]byte{}, rfcMaskedHello...), booktest.ClientFrame(0x89, []byte("ping!"), testKey)...)
	d := newDecoder(iotest.OneByteReader(bytes.NewReader(stream)), 1<<20)
	f, err := d.next()
	require.NoError(t, err)
	assert.Equal(t, "Hello", string(f.payload))
	f, err = d.next()
	require.NoError(t, err)
	assert.Equal(t, byte(opPing), f.opcode)
	assert.Equal(t, "ping!", string(f.payload))
	_, err = d.next()
	assert.ErrorIs(t, err, io.EOF)
}

func TestRefusalsCarryTheirCloseCode(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		code int
		text string
	}{
		{"unmasked", rfcUnmaskedHello, 1002, "client frame not masked"},
		{"RSV1", booktest.ClientFrame(0xC1, nil, testKey), 1002, "RSV bits 100"},
		{"opcode 0x3", booktest.ClientFrame(0x83, nil, testKey), 1002, "unknown opcode 0x3"},
		{"ping of 126 bytes", booktest.ClientFrame(0x89, make([]byte, 126), testKey), 1002, "control frame with a 126-byte payload"},
		{"fragmented close", booktest.ClientFrame(0x08, nil, testKey), 1002, "fragmented control frame"},
		{"top bit of a 64-bit length", []byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}, 1002, "most significant bit"},
		{"non-minimal 16-bit length", []byte{0x82, 0xFE, 0, 5}, 1002, "16-bit form"},
		{"2^40 bytes", []byte{0x82, 0xFF, 0, 0, 1, 0, 0, 0, 0, 0}, 1009, "a 1099511627776-byte frame would take the message over the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDecoder(bytes.NewReader(tt.wire), 16<<20)
			_, err := d.next()
			var pe *protocolError
			require.True(t, errors.As(err, &pe), "got %v", err)
			assert.Equal(t, tt.code, pe.code)
			assert.Contains(t, pe.reason, tt.text)
			assert.Nil(t, d.buf, "nothing was allocated for the payload")
		})
	}
}

func TestEncodeTheRFCExamples(t *testing.T) {
	assert.Equal(t, rfcUnmaskedHello, appendFrame(nil, true, opText, []byte("Hello")))
	payload := make([]byte, 256)
	assert.Equal(t, append(append([]byte{}, rfcHeader256...), payload...), appendFrame(nil, true, opBinary, payload))
	payload = make([]byte, 65536)
	assert.Equal(t, append(append([]byte{}, rfcHeader65536...), payload...), appendFrame(nil, true, opBinary, payload))

	// frameHeader writes the same header as appendFrame, for every form.
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		var h [10]byte
		size := frameHeader(&h, true, opBinary, n)
		assert.Equal(t, appendFrame(nil, true, opBinary, make([]byte, n))[:size], h[:size], "length %d", n)
	}
}

func TestDecodeOfEncodeRoundTrips(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		opcode := []byte{opText, opBinary, opPing, opPong}[rng.IntN(4)]
		size := rng.IntN(70000)
		if opcode >= opClose {
			size = rng.IntN(126)
		}
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(rng.Uint32())
		}
		wire := appendFrame(nil, true, opcode, payload)
		// What the server encodes, masked as a client would send it.
		f, err := newDecoder(bytes.NewReader(booktest.ClientFrame(wire[0], payload, testKey)), 1<<20).next()
		require.NoError(t, err)
		assert.Equal(t, opcode, f.opcode)
		require.True(t, bytes.Equal(payload, f.payload))
	}
}

func TestMaskFastAgreesWithMask(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 100 {
		key := [4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}
		plain := make([]byte, n)
		for i := range plain {
			plain[i] = byte(rng.Uint32())
		}
		fast := append([]byte{}, plain...)
		mask(key, plain)
		maskFast(key, fast)
		require.Equal(t, plain, fast)
	}
}

// BenchmarkMask compares chapter 04's mask, a byte at a time, with
// maskFast, eight bytes at a time: go test ./06-full-server -run '^$' -bench Mask
func BenchmarkMask(b *testing.B) {
	for _, impl := range []struct {
		name string
		fn   func([4]byte, []byte)
	}{{"bytewise", mask}, {"wordwise", maskFast}} {
		for _, size := range []int{32, 1 << 10, 64 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%s/%dB", impl.name, size), func(b *testing.B) {
				buf := make([]byte, size)
				b.SetBytes(int64(size))
				for b.Loop() {
					impl.fn(testKey, buf)
				}
			})
		}
	}
}

func TestValidCloseCodes(t *testing.T) {
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		assert.True(t, validCloseCode(code), "%d", code)
	}
	// RFC 6455 section 7.4: below 1000 unused, 1004-1006 and 1015 reserved,
	// 1016-2999 unassigned, 5000 and up undefined.
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		assert.False(t, validCloseCode(code), "%d", code)
	}
}

func TestUTF8CheckerAcrossFragments(t *testing.T) {
	euro := []byte("€") // e2 82 ac
	tests := []struct {
		name      string
		fragments [][]byte
		ok        bool
		failsAt   int // the fragment after which it must have failed
	}{
		{"ASCII", [][]byte{[]byte("Hello")}, true, 0},
		{"whole characters", [][]byte{[]byte("κόσμε"), []byte("😀")}, true, 0},
		{"a character split in two", [][]byte{euro[:1], euro[1:]}, true, 0},
		{"a character split in three", [][]byte{euro[:1], euro[1:2], euro[2:]}, true, 0},
		{"cut off at the end", [][]byte{euro[:2]}, false, 0},
		{"a lone continuation byte", [][]byte{[]byte("a\x80"), []byte("b")}, false, 0},
		{"overlong", [][]byte{{0xC0, 0xAF}}, false, 0},
		{"a surrogate", [][]byte{{0xED, 0xA0}, {0x80}}, false, 0},
		{"over U+10FFFF", [][]byte{{0xF4, 0x90}, {0x80, 0x80}}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c utf8Checker
			var msg []byte
			ok := true
			for i, frag := range tt.fragments {
				msg = append(msg, frag...)
				if ok = c.check(msg, i == len(tt.fragments)-1); !ok {
					assert.Equal(t, tt.failsAt, i, "failed at fragment %d", i)
					break
				}
			}
			assert.Equal(t, tt.ok, ok)
		})
	}
}

func FuzzFrameReader(f *testing.F) {
	f.Add(rfcMaskedHello)
	f.Add(rfcUnmaskedHello)
	f.Add(booktest.ClientFrame(0x82, make([]byte, 300), testKey))
	f.Add([]byte{0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, stream []byte) {
		const limit = 1024
		d := newDecoder(bytes.NewReader(stream), limit)
		for {
			f, err := d.next()
			if cap(d.buf) > limit {
				t.Fatalf("allocated %d bytes, over the limit of %d", cap(d.buf), limit)
			}
			if err != nil {
				return
			}
			if len(f.payload) > limit || !f.masked || f.rsv != 0 {
				t.Fatalf("accepted a frame it should refuse: %+v", f)
			}
		}
	})
}

func FuzzUTF8Checker(f *testing.F) {
	f.Add([]byte("κόσμε"), 3)
	f.Add([]byte{0xED, 0xA0, 0x80}, 1)
	f.Fuzz(func(t *testing.T, text []byte, cut int) {
		if len(text) == 0 {
			return
		}
		cut = int(uint(cut) % uint(len(text)))
		var c utf8Checker
		first := c.check(text[:cut], false)
		whole := first && c.check(text, true)
		if whole != utf8.Valid(text) {
			t.Fatalf("%q cut at %d: checker says %v, utf8.Valid says %v", text, cut, whole, !whole)
		}
	})
}
