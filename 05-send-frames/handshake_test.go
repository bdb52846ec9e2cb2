package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

func TestAcceptKey(t *testing.T) {
	tests := []struct{ name, key, accept string }{
		// RFC 6455 section 1.3.
		{"RFC 6455 example", "dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
		// The study note's request; accept computed with
		// printf '%s' KEY258EAFA5-E914-47DA-95CA-C5AB0DC85B11 | openssl sha1 -binary | base64
		{"the study note's key", "6ZCfv6CkFfxlP1ALZM7koQ==", "L20MgGk7EWIknfryFLsoBIZFu+I="},
		{"Chromium's key", "XsHZY8QPU4vSCuJAE8N/dw==", "FuIzEIaX41n4Sqt26peZ9qt1m+A="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.accept, acceptKey(tt.key))
		})
	}
}

func TestCheckUpgradeAccepts(t *testing.T) {
	for name, raw := range map[string]string{
		"RFC 6455 section 1.2 request": rfcRequest,
		"Chromium's request":           booktest.ChromiumUpgrade,
		"Connection with keep-alive":   booktest.UpgradeRequest("GET", "Connection", "keep-alive, Upgrade"),
		"values in any case":           booktest.UpgradeRequest("GET", "Connection", "UPGRADE", "Upgrade", "WebSocket"),
		"names in any case": "GET /ws HTTP/1.1\r\nhost: a\r\nUPGRADE: websocket\r\nconnection: Upgrade\r\n" +
			"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n",
		"Upgrade as a list": booktest.UpgradeRequest("GET", "Upgrade", "foo/2, websocket"),
		"Content-Length: 0": booktest.UpgradeRequest("GET", "Content-Length", "0"),
	} {
		t.Run(name, func(t *testing.T) {
			req, err := parseHead([]byte(raw))
			require.NoError(t, err)
			assert.Nil(t, checkUpgrade(req))
		})
	}
}

func TestCheckUpgradeRefuses(t *testing.T) {
	tests := []struct {
		name, raw, status, header, reason string
	}{
		{"POST", booktest.UpgradeRequest("POST"), "405 Method Not Allowed", "Allow: GET", "must be a GET request"},
		{"a chunked body", booktest.UpgradeRequest("GET", "Transfer-Encoding", "chunked"), "400 Bad Request", "", `must not have a body (a GET body has no defined meaning, RFC 9110 section 9.3.1), but it has "Transfer-Encoding: chunked"`},
		{"a body of 5 bytes", booktest.UpgradeRequest("GET", "Content-Length", "5"), "400 Bad Request", "", `must not have a body (a GET body has no defined meaning, RFC 9110 section 9.3.1), but it has "Content-Length: 5"`},
		{"HTTP/1.0", strings.Replace(booktest.UpgradeRequest("GET"), "HTTP/1.1", "HTTP/1.0", 1), "400 Bad Request", "", "HTTP/1.1 or higher"},
		{"no Host", booktest.UpgradeRequest("GET", "Host", ""), "400 Bad Request", "", "missing Host"},
		{"no Upgrade", booktest.UpgradeRequest("GET", "Upgrade", ""), "400 Bad Request", "", `missing "Upgrade: websocket"`},
		{"Upgrade: h2c", booktest.UpgradeRequest("GET", "Upgrade", "h2c"), "400 Bad Request", "", `missing "Upgrade: websocket"`},
		{"no Connection", booktest.UpgradeRequest("GET", "Connection", ""), "400 Bad Request", "", `must include "Upgrade"`},
		{"Connection: keep-alive", booktest.UpgradeRequest("GET", "Connection", "keep-alive"), "400 Bad Request", "", `must include "Upgrade"`},
		{"no version", booktest.UpgradeRequest("GET", "Sec-WebSocket-Version", ""), "426 Upgrade Required", "Sec-WebSocket-Version: 13", `unsupported Sec-WebSocket-Version ""`},
		{"version 8", booktest.UpgradeRequest("GET", "Sec-WebSocket-Version", "8"), "426 Upgrade Required", "Sec-WebSocket-Version: 13", `unsupported Sec-WebSocket-Version "8"`},
		{"no key", booktest.UpgradeRequest("GET", "Sec-WebSocket-Key", ""), "400 Bad Request", "", `Sec-WebSocket-Key "" is not 16 bytes`},
		{"key not base64", booktest.UpgradeRequest("GET", "Sec-WebSocket-Key", "not base64!"), "400 Bad Request", "", "is not 16 bytes in base64"},
		{"key of 15 bytes", booktest.UpgradeRequest("GET", "Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"), "400 Bad Request", "", "is not 16 bytes in base64"},
		{"key of 17 bytes", booktest.UpgradeRequest("GET", "Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA="), "400 Bad Request", "", "is not 16 bytes in base64"},
		{"two keys", booktest.UpgradeRequest("GET", "sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA=="), "400 Bad Request", "", "is not 16 bytes in base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := parseHead([]byte(tt.raw))
			require.NoError(t, err)
			r := checkUpgrade(req)
			require.NotNil(t, r, "accepted:\n%s", tt.raw)
			assert.Equal(t, tt.status, r.status)
			assert.Contains(t, r.reason, tt.reason)
			if tt.header != "" {
				assert.Equal(t, []string{tt.header}, r.header)
			}
		})
	}
}

func TestServerRefusesOverTheWire(t *testing.T) {
	addr, out := start(t, nil)

	resp, body, _ := booktest.Request(t, addr, booktest.UpgradeRequest("GET", "Sec-WebSocket-Version", "8"))
	assert.Equal(t, 426, resp.StatusCode)
	assert.Equal(t, "13", resp.Header.Get("Sec-WebSocket-Version"))
	assert.Contains(t, body, `unsupported Sec-WebSocket-Version "8"`)

	resp, _, _ = booktest.Request(t, addr, booktest.UpgradeRequest("PUT"))
	assert.Equal(t, 405, resp.StatusCode)
	assert.Equal(t, "GET", resp.Header.Get("Allow"))

	resp, body, _ = booktest.Request(t, addr, booktest.UpgradeRequest("GET", "Sec-WebSocket-Key", ""))
	assert.Equal(t, 400, resp.StatusCode)
	assert.Contains(t, body, "Sec-WebSocket-Key")

	resp, body, _ = booktest.Request(t, addr, booktest.UpgradeRequest("GET", "host", "example.com"))
	assert.Equal(t, 400, resp.StatusCode, "two Host fields")
	assert.Contains(t, body, "more than one Host header")

	resp, _, _ = booktest.Request(t, addr, strings.Replace(booktest.UpgradeRequest("GET"), "HTTP/1.1", "HTTP/9.9", 1))
	assert.Equal(t, 505, resp.StatusCode, "HTTP/9.9 is not HTTP/1.1 or higher")

	out.WaitFor(t, `426 Upgrade Required, unsupported Sec-WebSocket-Version "8"`)
}

// The opening handshake is a GET (RFC 6455 section 4.1), and a GET's body
// has no defined meaning (RFC 9110 section 9.3.1). A body announced by
// Transfer-Encoding or Content-Length is refused: after a 101 its bytes
// would be read as WebSocket frames. The body is 64 KiB, more than the
// server reads, and the refusal must still arrive whole.
func TestAHandshakeWithABodyIsRefused(t *testing.T) {
	addr, out := start(t, nil)
	body := strings.Repeat("a", 64<<10)
	for _, raw := range []string{
		booktest.UpgradeRequest("GET", "Transfer-Encoding", "chunked") + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body),
		booktest.UpgradeRequest("GET", "Content-Length", fmt.Sprint(len(body))) + body,
	} {
		resp, reason, _ := booktest.Request(t, addr, raw)
		assert.Equal(t, 400, resp.StatusCode)
		assert.Contains(t, reason, "the opening handshake must not have a body")
	}
	out.WaitFor(t, `400 Bad Request, the opening handshake must not have a body (a GET body has no defined meaning, RFC 9110 section 9.3.1), but it has "Content-Length: 65536"`)
}
