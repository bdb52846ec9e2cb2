package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"wsbook/internal/booktest"
)

// A refusal must reach the client even when the client has sent more than
// the server read: closing a socket that still holds unread bytes makes
// the kernel reset the connection (see booktest.RequestWhileSending). The
// client sends 64 KiB of header (the server stops at 8 KiB and answers
// 431), or a bad head with 64 KiB behind it (400).
func TestARefusalArrivesWhileTheClientIsStillSending(t *testing.T) {
	addr, _ := start(t, nil)
	for _, tt := range []struct {
		name, raw string
		status    int
		body      string
	}{
		{"431", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 64<<10), 431, "request head over 8192 bytes\n"},
		{"400", "GET / HTTP/1.1\r\nHost : a\r\n\r\n" + strings.Repeat("a", 64<<10), 400, "invalid header name \"Host \"\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := booktest.RequestWhileSending(t, addr, tt.raw)
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, tt.body, body)
		})
	}
}
