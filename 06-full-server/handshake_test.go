package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestHasToken(t *testing.T) {
	assert.True(t, hasToken("keep-alive, Upgrade", "upgrade"))
	assert.True(t, hasToken("keep-alive, UPGRADE", "upgrade"), "the field sent twice, joined")
	assert.False(t, hasToken("upgraded", "upgrade"))
	assert.False(t, hasToken("", "upgrade"))
}

// FuzzHandshake feeds arbitrary requests to the upgrader's checks: none may
// panic, and whatever they accept must be a real opening handshake.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte("GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	f.Add([]byte("GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://h\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.0\r\n\r\n"))
	u := &upgrader{origins: []string{"http://allowed"}, limits: &defaultLimits, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		status, reason, _ := u.check(r)
		if status != 0 {
			if reason == "" {
				t.Fatalf("refused with %d and no reason", status)
			}
			return
		}
		key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key"))
		if r.Method != "GET" || err != nil || len(key) != 16 || r.Header.Get("Sec-WebSocket-Version") != "13" ||
			!strings.Contains(strings.ToLower(strings.Join(r.Header.Values("Upgrade"), ",")), "websocket") {
			t.Fatalf("accepted a request that is not an opening handshake:\n%s", raw)
		}
	})
}
