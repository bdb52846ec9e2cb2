package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

func TestInspectorShowsTheLastFrame(t *testing.T) {
	addr, _ := start(t, nil)
	_, _, conn := booktest.Request(t, addr, strings.Replace(booktest.ChromiumUpgrade, "GET /ws ", "GET /ws?inspect=abc ", 1))
	_, err := conn.Write(rfcMaskedHello)
	require.NoError(t, err)
	booktest.ReadServerFrame(t, conn.R)

	resp, body, _ := booktest.Request(t, addr, "GET /inspect?token=abc HTTP/1.1\r\nHost: x\r\n\r\n")
	require.Equal(t, 200, resp.StatusCode)
	assert.JSONEq(t, `{
		"received": {"header": "81 85 37 fa 21 3d", "wire": "7f 9f 4d 51 58", "payload": "48 65 6c 6c 6f", "length": 5},
		"reply":    {"header": "81 05", "payload": "48 65 6c 6c 6f", "length": 5}
	}`, body)

	resp, _, _ = booktest.Request(t, addr, "GET /inspect?token=other HTTP/1.1\r\nHost: x\r\n\r\n")
	assert.Equal(t, 404, resp.StatusCode)

	conn.Close()
	assert.Eventually(t, func() bool {
		resp, _, _ := booktest.Request(t, addr, "GET /inspect?token=abc HTTP/1.1\r\nHost: x\r\n\r\n")
		return resp.StatusCode == 404
	}, 5*time.Second, 10*time.Millisecond, "the inspection is forgotten with its connection")
}

// A token belongs to the connection that opened with it first: a second
// connection with the same token neither shows its frames under it nor
// takes the first one's away when it ends.
func TestAnInspectorTokenCannotBeTakenOver(t *testing.T) {
	addr, _ := start(t, nil)
	upgrade := strings.Replace(booktest.ChromiumUpgrade, "GET /ws ", "GET /ws?inspect=abc ", 1)
	_, _, first := booktest.Request(t, addr, upgrade)
	_, err := first.Write(rfcMaskedHello)
	require.NoError(t, err)
	booktest.ReadServerFrame(t, first.R)

	_, _, second := booktest.Request(t, addr, upgrade)
	_, err = second.Write(booktest.ClientFrame(0x81, []byte("forged"), testKey))
	require.NoError(t, err)
	booktest.ReadServerFrame(t, second.R)
	second.Close()

	time.Sleep(100 * time.Millisecond) // time for the second connection's end to be handled
	resp, body, _ := booktest.Request(t, addr, "GET /inspect?token=abc HTTP/1.1\r\nHost: x\r\n\r\n")
	require.Equal(t, 200, resp.StatusCode, "the first connection's inspection is still there")
	assert.Contains(t, body, `"payload":"48 65 6c 6c 6f"`, "and it is the first connection's frame")
}
