package booktest

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The frames of RFC 6455 section 5.7, byte for byte, written out from the
// RFC's text: the chapters' tests build their frames with ClientFrame and
// MaskFrame, so these two are checked against the RFC here.
var (
	rfcUnmaskedHello = []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}
	rfcMaskedHello   = []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	rfcUnmaskedPong  = []byte{0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}
	rfcMaskedPong    = []byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	rfcHeader256     = []byte{0x82, 0x7E, 0x01, 0x00}                                     // binary, 256 bytes, unmasked
	rfcHeader65536   = []byte{0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00} // binary, 65536 bytes, unmasked
)

var rfcKey = [4]byte{0x37, 0xfa, 0x21, 0x3d} // the key of the RFC's masked examples

func TestMaskFrameMatchesTheRFCExamples(t *testing.T) {
	unmasked := append([]byte{}, rfcUnmaskedHello...)
	assert.Equal(t, rfcMaskedHello, MaskFrame(unmasked, 2, rfcKey))
	assert.Equal(t, rfcUnmaskedHello, unmasked, "the unmasked frame is left as it was")
	assert.Equal(t, rfcMaskedPong, MaskFrame(rfcUnmaskedPong, 2, rfcKey), "the masked pong of section 5.7")

	// The length bytes stay as they are, in the form given, even one that
	// is not the shortest.
	got := MaskFrame([]byte{0x82, 0x7E, 0x00, 0x01, 0xAB}, 4, rfcKey)
	assert.Equal(t, []byte{0x82, 0xFE, 0x00, 0x01, 0x37, 0xfa, 0x21, 0x3d, 0xAB ^ 0x37}, got)
}

func TestClientFrameMatchesTheRFCExamples(t *testing.T) {
	assert.Equal(t, rfcMaskedHello, ClientFrame(0x81, []byte("Hello"), rfcKey))
	assert.Equal(t, rfcMaskedPong, ClientFrame(0x8A, []byte("Hello"), rfcKey))
	for _, header := range [][]byte{rfcHeader256, rfcHeader65536} {
		payload := make([]byte, 256)
		if len(header) == 10 {
			payload = make([]byte, 65536)
		}
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		unmasked := append(append([]byte{}, header...), payload...)
		assert.Equal(t, MaskFrame(unmasked, len(header), rfcKey), ClientFrame(0x82, payload, rfcKey), "%d bytes", len(payload))
	}
}

func TestClientFrameUsesTheShortestLengthForm(t *testing.T) {
	for _, tt := range []struct {
		length int
		header []byte
	}{
		{0, []byte{0x81, 0x80}},
		{125, []byte{0x81, 0x80 | 125}},
		{126, []byte{0x81, 0x80 | 126, 0, 126}},
		{65535, []byte{0x81, 0x80 | 126, 0xFF, 0xFF}},
		{65536, []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		header := append(tt.header, rfcKey[:]...)
		assert.Equal(t, header, ClientFrameHeader(0x81, uint64(tt.length), rfcKey), "length %d", tt.length)
		frame := ClientFrame(0x81, bytes.Repeat([]byte("xyz"), tt.length/3+1)[:tt.length], rfcKey)
		assert.Equal(t, header, frame[:len(header)], "length %d", tt.length)
		assert.Len(t, frame, len(header)+tt.length)
	}
	assert.Equal(t, []byte{0x82, 0xFF, 0, 0, 0x01, 0, 0, 0, 0, 0, 0x37, 0xfa, 0x21, 0x3d}, ClientFrameHeader(0x82, 1<<40, rfcKey),
		"a header may declare far more than a test will send")
}

func TestReadFrameReadsEveryLengthForm(t *testing.T) {
	f, err := ReadFrame(bytes.NewReader(rfcUnmaskedHello))
	require.NoError(t, err)
	assert.Equal(t, Frame{Fin: true, Opcode: 1, Payload: []byte("Hello")}, f)

	fragment := []byte{0x01, 0x03, 0x48, 0x65, 0x6c} // the first fragment of section 5.7's fragmented Hello
	f = ReadServerFrame(t, bytes.NewReader(fragment))
	assert.Equal(t, Frame{Opcode: 1, Payload: []byte("Hel")}, f)

	for _, header := range [][]byte{rfcHeader256, rfcHeader65536} {
		payload := bytes.Repeat([]byte{7}, 256)
		if len(header) == 10 {
			payload = bytes.Repeat([]byte{7}, 65536)
		}
		f := ReadServerFrame(t, bytes.NewReader(append(append([]byte{}, header...), payload...)))
		assert.Equal(t, byte(2), f.Opcode)
		assert.Equal(t, payload, f.Payload)
	}

	f, err = ReadFrame(bytes.NewReader(rfcMaskedHello))
	require.NoError(t, err)
	assert.True(t, f.Masked, "a masked frame is reported, for the caller to refuse")

	_, err = ReadFrame(bytes.NewReader(rfcUnmaskedHello[:4]))
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, err = ReadFrame(bytes.NewReader(nil))
	assert.ErrorIs(t, err, io.EOF)
}
