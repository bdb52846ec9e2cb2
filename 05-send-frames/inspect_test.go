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
