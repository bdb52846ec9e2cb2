package main

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

// The frames of RFC 6455 section 5.7, byte for byte.
var (
	rfcUnmaskedHello = []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}
	rfcMaskedHello   = []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	rfcMaskedPong    = []byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	rfcHeader256     = []byte{0x82, 0x7E, 0x01, 0x00}                                     // binary, 256 bytes, unmasked
	rfcHeader65536   = []byte{0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00} // binary, 65536 bytes, unmasked
)

var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d} // the key of the RFC's masked examples

func reader(stream []byte) *frameReader {
	return &frameReader{r: bufio.NewReader(bytes.NewReader(stream)), maxPayload: 16 << 20}
}

func TestDecodeTheRFCExamples(t *testing.T) {
	f, err := reader(rfcMaskedHello).next()
	require.NoError(t, err)
	assert.True(t, f.fin)
	assert.Equal(t, byte(opText), f.opcode)
	assert.True(t, f.masked)
	assert.Equal(t, testKey, f.maskKey)
	assert.Equal(t, "Hello", string(f.payload))
	assert.Equal(t, rfcMaskedHello[:6], f.header)

	f, err = reader(rfcMaskedPong).next()
	require.NoError(t, err)
	assert.Equal(t, byte(opPong), f.opcode)
	assert.Equal(t, "Hello", string(f.payload))

	for _, rfc := range []struct {
		header []byte
		length int
	}{{rfcHeader256, 256}, {rfcHeader65536, 65536}} {
		payload := make([]byte, rfc.length)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		wire := booktest.MaskFrame(append(append([]byte{}, rfc.header...), payload...), len(rfc.header), testKey)
		f, err := reader(wire).next()
		require.NoError(t, err)
		assert.Equal(t, byte(opBinary), f.opcode)
		assert.Equal(t, payload, f.payload)
		assert.Len(t, f.header, len(rfc.header)+4)
	}
}

func TestEveryLengthBoundary(t *testing.T) {
	for _, tt := range []struct {
		length, headerLen int
	}{
		{0, 6}, {1, 6}, {125, 6}, // 7-bit form: 2 bytes + 4 of key
		{126, 8}, {127, 8}, {65535, 8}, // 16-bit form
		{65536, 14}, {1 << 20, 14}, // 64-bit form
	} {
		payload := bytes.Repeat([]byte("xyz"), tt.length/3+1)[:tt.length]
		f, err := reader(booktest.ClientFrame(0x81, payload, testKey)).next()
		require.NoError(t, err, "length %d", tt.length)
		assert.Len(t, f.header, tt.headerLen, "length %d", tt.length)
		assert.True(t, bytes.Equal(payload, f.payload), "length %d", tt.length)
	}
}

func TestDecodeOneByteAtATime(t *testing.T) {
	stream := append(append([]byte{}, rfcMaskedHello...), booktest.ClientFrame(0x82, bytes.Repeat([]byte{9}, 300), testKey)...)
	fr := &frameReader{r: bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(stream)), 16), maxPayload: 1024}
	f, err := fr.next()
	require.NoError(t, err)
	assert.Equal(t, "Hello", string(f.payload))
	f, err = fr.next()
	require.NoError(t, err)
	assert.Equal(t, bytes.Repeat([]byte{9}, 300), f.payload)
	_, err = fr.next()
	assert.ErrorIs(t, err, io.EOF, "a clean end between frames is io.EOF")
}

func TestSeveralFramesInOneRead(t *testing.T) {
	stream := bytes.Join([][]byte{rfcMaskedHello, rfcMaskedPong, rfcMaskedHello}, nil)
	fr := reader(stream)
	for _, op := range []byte{opText, opPong, opText} {
		f, err := fr.next()
		require.NoError(t, err)
		assert.Equal(t, op, f.opcode)
		assert.Equal(t, "Hello", string(f.payload))
	}
}

func TestATruncatedFrameIsAnUnexpectedEOF(t *testing.T) {
	for cut := 1; cut < len(rfcMaskedHello); cut++ {
		_, err := reader(rfcMaskedHello[:cut]).next()
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut after %d bytes", cut)
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name    string
		wire    []byte
		wantErr string
	}{
		{"unmasked (RFC 6455 section 5.7's Hello)", rfcUnmaskedHello, "client frame not masked (RFC 6455 section 5.1)"},
		{"RSV1 without an extension", booktest.ClientFrame(0xC1, []byte("Hello"), testKey), "RSV bits 100 set, but no extension was negotiated"},
		{"RSV3 without an extension", booktest.ClientFrame(0x91, []byte("Hello"), testKey), "RSV bits 001 set"},
		{"reserved opcode 0x3", booktest.ClientFrame(0x83, nil, testKey), "unknown opcode 0x3"},
		{"reserved opcode 0xB", booktest.ClientFrame(0x8B, nil, testKey), "unknown opcode 0xB"},
		{"ping over 125 bytes", booktest.ClientFrame(0x89, make([]byte, 126), testKey), "control frame with a 126-byte payload; the limit is 125"},
		{"fragmented ping", booktest.ClientFrame(0x09, []byte("Hello"), testKey), "fragmented control frame"},
		{"fragmented close", booktest.ClientFrame(0x08, nil, testKey), "fragmented control frame"},
		{"64-bit length with the top bit set", []byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1}, "most significant bit set"},
		{"5 in the 16-bit form", []byte{0x82, 0xFE, 0x00, 0x05}, "length 5 sent in the 16-bit form"},
		{"256 in the 64-bit form", []byte{0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0x01, 0x00}, "length 256 sent in the 64-bit form"},
		{"2^40 bytes", []byte{0x82, 0xFF, 0, 0, 0x01, 0, 0, 0, 0, 0}, "payload of 1099511627776 bytes is over this server's limit of 16777216"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := reader(tt.wire)
			_, err := fr.next()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestARefusedFrameEndsTheConnection(t *testing.T) {
	addr, out := start(t, nil)
	_, _, conn := booktest.Request(t, addr, booktest.ChromiumUpgrade)
	_, err := conn.Write(rfcUnmaskedHello)
	require.NoError(t, err)
	_, err = conn.R.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "the server hung up")
	out.WaitFor(t, "connection over: client frame not masked (RFC 6455 section 5.1)")
}

// A peer may declare a gigabyte and send nothing more: the reader must
// refuse from the header alone, without setting the gigabyte aside.
func TestTheLimitIsCheckedBeforeAllocating(t *testing.T) {
	header := []byte{0x82, 0xFF, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4} // 1 GiB, masked
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fr := &frameReader{r: bufio.NewReader(bytes.NewReader(header)), maxPayload: 16 << 20}
	_, err := fr.next()
	runtime.ReadMemStats(&after)
	require.ErrorContains(t, err, "payload of 1073741824 bytes is over this server's limit")
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10))
}

// The length in a header is a claim, not bytes: memory must follow what
// arrives. A header that declares 16 MiB, followed by one byte, must not
// make the reader set 16 MiB aside.
func TestPayloadMemoryFollowsTheBytesThatArrive(t *testing.T) {
	header := []byte{0x82, 0xFF, 0, 0, 0, 0, 0x01, 0, 0, 0, 1, 2, 3, 4} // 16 MiB, masked
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fr := &frameReader{r: bufio.NewReader(bytes.NewReader(append(header, 0xAB))), maxPayload: 16 << 20}
	_, err := fr.next()
	runtime.ReadMemStats(&after)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(256<<10))
}

// A client may declare 1 MiB, the limit, and send one byte. The server's
// memory must follow the bytes that arrive, not the lengths clients
// declare: 50 such clients must not cost 50 times 1 MiB.
func TestDeclaredButUnsentPayloadsCostLittleMemory(t *testing.T) {
	addr, out := start(t, nil)
	const clients = 50
	conns := make([]*booktest.Conn, clients)
	for i := range conns {
		_, _, conns[i] = booktest.Request(t, addr, booktest.ChromiumUpgrade)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, conn := range conns {
		_, err := conn.Write(append(booktest.ClientFrameHeader(0x82, 1<<20, testKey), 0xAB)) // the limit
		require.NoError(t, err)
		conn.Close()
	}
	out.WaitForCount(t, "connection over: unexpected EOF", clients)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d clients declared 1 MiB each and sent 1 byte: %d KiB allocated", clients, allocated>>10)
	assert.Less(t, allocated, uint64(8<<20), "the server allocated for what was declared, not for what arrived")
}

func TestMaskMatchesTheRFCExample(t *testing.T) {
	hello := []byte("Hello")
	mask(testKey, hello)
	assert.Equal(t, rfcMaskedHello[6:], hello)
	mask(testKey, hello)
	assert.Equal(t, "Hello", string(hello), "masking twice gives back the original")
}

func FuzzFrameReader(f *testing.F) {
	f.Add(rfcMaskedHello)
	f.Add(rfcUnmaskedHello)
	f.Add(booktest.ClientFrame(0x82, make([]byte, 300), testKey))
	f.Add([]byte{0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, stream []byte) {
		const limit = 1024
		fr := &frameReader{r: bufio.NewReaderSize(bytes.NewReader(stream), 16), maxPayload: limit}
		for {
			f, err := fr.next()
			if err != nil {
				return
			}
			if len(f.payload) > limit || !f.masked || f.rsv != 0 {
				t.Fatalf("accepted a frame it should refuse: %+v", f)
			}
		}
	})
}

func TestEncodeTheRFCExamples(t *testing.T) {
	assert.Equal(t, rfcUnmaskedHello, appendFrame(nil, true, opText, []byte("Hello")))
	assert.Equal(t, []byte{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}, appendFrame(nil, true, opPing, []byte("Hello")), "RFC 6455 section 5.7's unmasked ping")
	assert.Equal(t, []byte{0x01, 0x03, 0x48, 0x65, 0x6c}, appendFrame(nil, false, opText, []byte("Hel")), "the first fragment of section 5.7's fragmented Hello")
	assert.Equal(t, []byte{0x80, 0x02, 0x6c, 0x6f}, appendFrame(nil, true, opContinuation, []byte("lo")), "its last fragment")

	payload := make([]byte, 256)
	assert.Equal(t, append(append([]byte{}, rfcHeader256...), payload...), appendFrame(nil, true, opBinary, payload))
	payload = make([]byte, 65536)
	assert.Equal(t, append(append([]byte{}, rfcHeader65536...), payload...), appendFrame(nil, true, opBinary, payload))
}

func TestEncodeUsesTheShortestLengthForm(t *testing.T) {
	for _, tt := range []struct {
		length    int
		header    []byte
		headerLen int
	}{
		{0, []byte{0x82, 0}, 2},
		{125, []byte{0x82, 125}, 2},
		{126, []byte{0x82, 126, 0, 126}, 4},
		{65535, []byte{0x82, 126, 0xFF, 0xFF}, 4},
		{65536, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, 10},
	} {
		wire := appendFrame(nil, true, opBinary, make([]byte, tt.length))
		assert.Equal(t, tt.header, wire[:tt.headerLen], "length %d", tt.length)
		assert.Len(t, wire, tt.headerLen+tt.length)
	}
}

func TestEncodeAppendsToWhatIsThere(t *testing.T) {
	wire := appendFrame([]byte("prefix"), true, opText, []byte("Hello"))
	assert.Equal(t, append([]byte("prefix"), rfcUnmaskedHello...), wire)
}

// Whatever the encoder writes, the decoder reads back, once masked as a
// client would mask it.
func TestDecodeOfEncodeRoundTrips(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	opcodes := []byte{opContinuation, opText, opBinary, opClose, opPing, opPong}
	for range 300 {
		opcode := opcodes[rng.IntN(len(opcodes))]
		fin, size := rng.IntN(2) == 0, rng.IntN(70000)
		if opcode >= opClose {
			fin, size = true, rng.IntN(126)
		}
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(rng.Uint32())
		}
		wire := appendFrame(nil, fin, opcode, payload)
		headerLen := len(wire) - size
		key := [4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}

		f, err := reader(booktest.MaskFrame(wire, headerLen, key)).next()
		require.NoError(t, err)
		assert.Equal(t, fin, f.fin)
		assert.Equal(t, opcode, f.opcode)
		require.True(t, bytes.Equal(payload, f.payload), "opcode %d, %d bytes", opcode, size)
	}
}

// repeatReader serves the same bytes over and over, so a benchmark can read
// frame after frame without building a stream of b.N frames.
type repeatReader struct {
	data []byte
	pos  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.pos:])
	r.pos = (r.pos + n) % len(r.data)
	return n, nil
}

var benchSizes = []struct {
	name string
	size int
}{{"32B", 32}, {"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

func BenchmarkDecode(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			wire := booktest.ClientFrame(0x82, bytes.Repeat([]byte{0xAB}, bs.size), testKey)
			fr := &frameReader{r: bufio.NewReaderSize(&repeatReader{data: wire}, 64<<10), maxPayload: 16 << 20}
			b.SetBytes(int64(bs.size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fr.next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMask(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			buf := make([]byte, bs.size)
			b.SetBytes(int64(bs.size))
			for b.Loop() {
				mask(testKey, buf)
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			payload := bytes.Repeat([]byte{0xAB}, bs.size)
			var buf []byte
			b.SetBytes(int64(bs.size))
			b.ReportAllocs()
			for b.Loop() {
				buf = appendFrame(buf[:0], true, opBinary, payload)
			}
		})
	}
}
