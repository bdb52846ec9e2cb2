package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

// start runs the chapter's server for one test; change, if given, adjusts
// its settings first. The server is shut down when the test ends.
func start(t testing.TB, change func(*config)) (string, *booktest.Output) {
	cfg := defaultConfig()
	if change != nil {
		change(&cfg)
	}
	out := &booktest.Output{}
	_, addr := serveFor(t, cfg, out)
	return addr, out
}

// serveFor runs a server with cfg, logging to out, until the test ends.
// The server exists before Serve's goroutine starts it, so that the
// cleanup can shut it down even when the test ends at once (a browser test
// that skips).
func serveFor(t testing.TB, cfg config, out io.Writer) (*server, string) {
	s := newServer(cfg, out)
	addr, _ := booktest.Serve(t, func(ln net.Listener, _ io.Writer) error {
		if err := s.serve(ln); err != http.ErrServerClosed {
			return err
		}
		return nil
	})
	t.Cleanup(func() {
		s.shutdown()
		s.wait()
	})
	return s, addr
}

func TestAcceptKey(t *testing.T) {
	// RFC 6455 section 1.3, and the study note's key (computed with openssl).
	assert.Equal(t, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", acceptKey("dGhlIHNhbXBsZSBub25jZQ=="))
	assert.Equal(t, "L20MgGk7EWIknfryFLsoBIZFu+I=", acceptKey("6ZCfv6CkFfxlP1ALZM7koQ=="))
}

func TestEchoRoundTrip(t *testing.T) {
	addr, _ := start(t, nil)
	ws := booktest.DialWS(t, addr, "/echo")
	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 20} {
		for _, opcode := range []byte{opText, opBinary} {
			payload := bytes.Repeat([]byte("abc"), n/3+1)[:n]
			require.NoError(t, ws.Send(0x80|opcode, payload))
			op, got, err := ws.ReadMessage()
			require.NoError(t, err)
			assert.Equal(t, opcode, op)
			assert.True(t, bytes.Equal(payload, got), "%d bytes", n)
		}
	}
}

func TestHandshakeRefusals(t *testing.T) {
	addr, out := start(t, nil)
	tests := []struct {
		name   string
		req    string
		status int
		header string
		reason string
	}{
		{"POST", "POST /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n",
			405, "Allow: GET", "must be a GET request"},
		{"no Upgrade", "GET /echo HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
			400, "", `missing "Upgrade: websocket"`},
		{"Connection without upgrade", "GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
			400, "", `"Connection" must include "Upgrade"`},
		{"version 8", "GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
			426, "Sec-WebSocket-Version: 13", `unsupported Sec-WebSocket-Version "8"`},
		{"short key", "GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAA\r\nSec-WebSocket-Version: 13\r\n\r\n",
			400, "", "is not 16 bytes in base64"},
		{"two keys", "GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n",
			400, "", `Sec-WebSocket-Key "dGhlIHNhbXBsZSBub25jZQ==, AAAAAAAAAAAAAAAAAAAAAA==" is not 16 bytes in base64`},
		{"a body", "GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 5\r\n\r\nhello",
			400, "", `must not have a body (a GET body has no defined meaning, RFC 9110 section 9.3.1), but it has "Content-Length: 5"`},
		{"cross-site origin", "GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n\r\n",
			403, "", `origin "http://evil.example" may not open WebSockets here`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body, _ := booktest.Request(t, addr, tt.req)
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Contains(t, body, tt.reason)
			if tt.header != "" {
				name, value, _ := strings.Cut(tt.header, ": ")
				assert.Equal(t, value, resp.Header.Get(name))
			}
		})
	}
	out.WaitFor(t, `msg="handshake refused"`)
	out.WaitFor(t, "status=403")
}

func TestOriginCheck(t *testing.T) {
	addr, _ := start(t, func(c *config) { c.origins = []string{"http://localhost:3000"} })
	for _, tt := range []struct {
		origin  string
		allowed bool
	}{
		{"", true},                       // not a browser: command-line and server-side clients send none
		{"http://" + addr, true},         // the page this server served
		{"http://localhost:3000", true},  // allowed with -origin
		{"http://evil.example", false},   // another site, in a visitor's browser
		{"http://localhost:3001", false}, // close is not the same
		{"null", false},                  // sandboxed frames and file:// pages
	} {
		var extra []string
		if tt.origin != "" {
			extra = []string{"Origin: " + tt.origin}
		}
		ws, resp, err := booktest.TryDialWS(addr, "/echo", extra...)
		require.NoError(t, err)
		if tt.allowed {
			assert.Equal(t, 101, resp.StatusCode, tt.origin)
			ws.Close()
		} else {
			assert.Equal(t, 403, resp.StatusCode, tt.origin)
		}
	}
}

func TestAHalfSentHandshakeIsDropped(t *testing.T) {
	addr, _ := start(t, func(c *config) { c.handshakeTimeout = 300 * time.Millisecond })
	conn := booktest.Dial(t, addr)
	_, err := io.WriteString(conn, "GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n")
	require.NoError(t, err)
	started := time.Now()
	_, err = io.ReadAll(conn)
	require.NoError(t, err, "the server closed the connection")
	assert.Less(t, time.Since(started), 3*time.Second)

	// Meanwhile, and after, others are served.
	ws := booktest.DialWS(t, addr, "/echo")
	require.NoError(t, ws.Send(0x81, []byte("still here")))
	_, got, err := ws.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "still here", string(got))
}

// A peer that stops answering pings is dropped; one that answers stays.
func TestKeepalivePings(t *testing.T) {
	addr, out := start(t, func(c *config) {
		c.limits.PingInterval, c.limits.PongTimeout = 100*time.Millisecond, 100*time.Millisecond
	})
	silent := booktest.DialWS(t, addr, "/echo")
	started, pings := time.Now(), 0
	for { // we never answer: the server pings, then gives up
		f, err := silent.ReadFrame()
		if err != nil {
			break
		}
		assert.Equal(t, byte(opPing), f.Opcode, "a quiet connection gets pings and nothing else")
		pings++
	}
	assert.GreaterOrEqual(t, pings, 1)
	assert.Less(t, time.Since(started), 2*time.Second, "dropped soon after the ping interval and the pong timeout")
	out.WaitFor(t, "connection lost")

	alive := booktest.DialWS(t, addr, "/echo")
	for range 5 {
		f, err := alive.ReadFrame()
		require.NoError(t, err)
		require.Equal(t, byte(opPing), f.Opcode)
		require.NoError(t, alive.Send(0x8A, f.Payload)) // pong
	}
	require.NoError(t, alive.Send(0x81, []byte("still open")))
	for {
		op, got, err := alive.ReadMessage()
		require.NoError(t, err)
		if op == opText {
			assert.Equal(t, "still open", string(got))
			break
		}
	}
}

// A peer that declares a 2^40-byte payload is refused with 1009, and the
// server sets nothing aside for it.
func TestAHugeDeclaredLengthIsRefusedWithFlatMemory(t *testing.T) {
	addr, _ := start(t, nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 20 {
		ws := booktest.DialWS(t, addr, "/echo")
		_, err := ws.Write([]byte{0x82, 0xFF, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4})
		require.NoError(t, err)
		f, err := ws.ReadFrame()
		require.NoError(t, err)
		assert.Equal(t, byte(opClose), f.Opcode)
		assert.Equal(t, 1009, booktest.CloseCode(f.Payload))
		ws.Close()
	}
	runtime.ReadMemStats(&after)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "20 connections declaring 1 TiB each")
}

// openFiles counts this process's file descriptors.
func openFiles(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd to count descriptors with")
	}
	return len(entries)
}

// 1000 clients that vanish in the middle of a frame leave nothing behind:
// no goroutine and no file descriptor.
func TestVanishingClientsLeaveNothingBehind(t *testing.T) {
	addr, _ := start(t, func(c *config) { c.limits.CloseTimeout = 100 * time.Millisecond })
	warm := booktest.DialWS(t, addr, "/echo") // start the server's own goroutines first
	warm.Close()
	time.Sleep(100 * time.Millisecond)
	goroutines, files := runtime.NumGoroutine(), openFiles(t)

	for i := range 1000 {
		ws, resp, err := booktest.TryDialWS(addr, "/echo")
		require.NoError(t, err)
		require.Equal(t, 101, resp.StatusCode)
		// Half a frame: a header for 1000 bytes, then only 10 of them, or
		// just part of a header.
		frame := booktest.ClientFrame(0x82, make([]byte, 1000), testKey)
		ws.Write(frame[:1+i%20])
		ws.Close()
	}
	// Poll by hand: assert.Eventually runs its condition on goroutines of
	// its own, which would be counted.
	var nowGoroutines, nowFiles int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if nowGoroutines, nowFiles = runtime.NumGoroutine(), openFiles(t); nowGoroutines <= goroutines && nowFiles <= files {
			break
		}
	}
	assert.LessOrEqual(t, nowGoroutines, goroutines, "goroutines left behind")
	assert.LessOrEqual(t, nowFiles, files, "file descriptors left behind")
}

// chatClient joins the room as name and reads its events.
type chatClient struct {
	*booktest.WS
	t *testing.T
}

func joinChat(t *testing.T, addr, name string) *chatClient {
	return &chatClient{booktest.DialWS(t, addr, "/ws?name="+name), t}
}

func (c *chatClient) say(text string) {
	require.NoError(c.t, c.Send(0x81, []byte(text)))
}

// next reads the next room event, answering pings on the way.
func (c *chatClient) next() event {
	c.t.Helper()
	for {
		op, payload, err := c.ReadMessage()
		require.NoError(c.t, err)
		if op == opText {
			var e event
			require.NoError(c.t, json.Unmarshal(payload, &e))
			return e
		}
		require.NotEqual(c.t, byte(opClose), op, "closed: %d %s", booktest.CloseCode(payload), payload)
	}
}

func TestChatTwoClients(t *testing.T) {
	addr, out := start(t, nil)
	ann := joinChat(t, addr, "ann")
	assert.Equal(t, event{Type: "welcome", Name: "ann", Online: []string{"ann"}}, ann.next())
	assert.Equal(t, event{Type: "join", Name: "ann"}, ann.next())
	bob := joinChat(t, addr, "bob")
	assert.Equal(t, event{Type: "join", Name: "bob"}, ann.next())
	assert.Equal(t, event{Type: "welcome", Name: "bob", Online: []string{"ann", "bob"}}, bob.next())
	assert.Equal(t, event{Type: "join", Name: "bob"}, bob.next())

	ann.say("hello, bob")
	for _, c := range []*chatClient{ann, bob} { // the sender hears itself too
		assert.Equal(t, event{Type: "message", Name: "ann", Text: "hello, bob"}, c.next())
	}
	require.NoError(t, bob.Send(0x88, []byte{0x03, 0xE8})) // bob leaves with 1000
	op, payload, err := bob.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, byte(opClose), op)
	assert.Equal(t, []byte{0x03, 0xE8}, payload, "the server echoes the status code")
	bob.Close()
	assert.Equal(t, event{Type: "leave", Name: "bob", Reason: "left"}, ann.next())
	out.WaitFor(t, `msg="connection closed" remote=`)
	out.WaitFor(t, "name=bob code=1000")
}

func TestChatRefusesATakenOrBadName(t *testing.T) {
	addr, _ := start(t, nil)
	joinChat(t, addr, "ann").next() // welcome
	for name, reason := range map[string]string{
		"ANN":  `the name "ANN" is taken`,
		"":     "a name has 1 to 32 characters",
		"a<b>": "not '<'",
	} {
		ws := booktest.DialWS(t, addr, "/ws?name="+url.QueryEscape(name))
		op, payload, err := ws.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, byte(opClose), op)
		assert.Equal(t, closePolicy, booktest.CloseCode(payload))
		assert.Contains(t, string(payload[2:]), reason)
	}
}

// 100 clients each send 5 messages at once: every client receives all 500,
// in one and the same order, and each sender's own messages in the order it
// sent them.
func TestChatHundredClientsSeeTheSameOrder(t *testing.T) {
	const clients, each = 100, 5
	// All 500 messages are sent at once: give every client a queue that
	// holds the whole burst, so that this test is about order alone (on a
	// loaded machine, under -race, a reader may fall 64 behind; dropping it
	// is TestChatDropsAClientThatStopsReading's subject).
	addr, _ := start(t, func(c *config) { c.chatBacklog = 64 << 20 })
	room := make([]*chatClient, clients)
	for i := range room {
		room[i] = joinChat(t, addr, fmt.Sprintf("c%03d", i))
		// The welcome says the client is in the room: only then does the
		// next one join, so that the joins happen in this order.
		require.Equal(t, "welcome", room[i].next().Type)
	}
	for _, c := range room { // skip the join events: each sees its own and those after
		for {
			if e := c.next(); e.Type == "join" && e.Name == "c099" {
				break
			}
		}
	}

	// Everyone reads while everyone sends, as browsers would.
	seen := make([][]string, clients)
	var readers, senders sync.WaitGroup
	for i, c := range room {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for range clients * each {
				e := c.next()
				seen[i] = append(seen[i], e.Name+" "+e.Text)
			}
		}()
		senders.Add(1)
		go func() {
			defer senders.Done()
			for j := range each {
				c.say(fmt.Sprintf("%d", j))
			}
		}()
	}
	senders.Wait()
	readers.Wait()

	for i := range room {
		require.Equal(t, seen[0], seen[i], "client %d saw another order than client 0", i)
	}
	// Each sender's messages arrive in the order it sent them.
	next := map[string]int{}
	for _, m := range seen[0] {
		name, j, _ := strings.Cut(m, " ")
		require.Equal(t, fmt.Sprint(next[name]), j, "%s's messages out of order", name)
		next[name]++
	}
	assert.Len(t, next, clients)
}

// A client that stops reading is dropped with 1008 once its queue is full,
// and meanwhile the others get every message at their own pace.
func TestChatDropsAClientThatStopsReading(t *testing.T) {
	addr, out := start(t, func(c *config) {
		c.chatBacklog = 64 << 10
		c.chatRate = 1 << 30 // fast fills the stuck client's buffers as fast as it can
	})
	stuck := joinChat(t, addr, "stuck")
	stuck.next() // its welcome: it is in the room before fast joins; it reads nothing more
	fast := joinChat(t, addr, "fast")
	fast.next() // welcome
	fast.next() // fast joined

	// Messages of 4000 bytes fill the stuck client's socket buffers, then
	// the 64 KiB it may fall behind the room: about 70 messages, as our send
	// buffer holds 128 KiB (chatSendBuffer, doubled) and the client's
	// receive buffer about as much. A send buffer left to grow holds
	// megabytes: 338 to 1073 messages in our runs.
	text := strings.Repeat("x", 4000)
	dropped := false
	for i := 0; !dropped; i++ {
		require.Less(t, i, 200, "the stuck client was not dropped: something holds more than its share")
		fast.say(text)
		started := time.Now()
		for {
			e := fast.next()
			if e.Type == "message" {
				break
			}
			assert.Equal(t, event{Type: "leave", Name: "stuck", Reason: "too slow: fell over 65536 bytes behind"}, e)
			dropped = true
		}
		// A hub that waited for the stuck client would stall here for the
		// write timeout (10 s); 3 s leaves room for a loaded machine.
		require.Less(t, time.Since(started), 3*time.Second, "message %d took too long to come back", i)
	}
	out.WaitFor(t, `msg="chat client dropped" name=stuck reason="too slow"`)

	// The stuck client, when it reads at last, finds the close frame.
	var last booktest.Frame
	for {
		f, err := stuck.ReadFrame()
		if err != nil {
			break
		}
		last = f
	}
	assert.Equal(t, byte(opClose), last.Opcode)
	assert.Equal(t, closePolicy, booktest.CloseCode(last.Payload))
}

// Shutdown closes every WebSocket with 1001.
func TestShutdownSaysGoingAway(t *testing.T) {
	cfg := defaultConfig()
	out := &booktest.Output{}
	s := newServer(cfg, out)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.serve(ln) }()

	echo := booktest.DialWS(t, ln.Addr().String(), "/echo")
	chat := joinChat(t, ln.Addr().String(), "ann")
	chat.next() // welcome
	chat.next() // ann joined
	go s.shutdown()
	for _, ws := range []*booktest.WS{echo, chat.WS} {
		op, payload, err := ws.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, byte(opClose), op)
		assert.Equal(t, closeGoingAway, booktest.CloseCode(payload))
		require.NoError(t, ws.Send(0x88, payload[:2])) // answer, as a client does,
		ws.Close()                                     // and hang up
	}
	assert.ErrorIs(t, <-served, http.ErrServerClosed)
	s.wait()
	out.WaitFor(t, "bye")
}

// The docs show what the terminal logs for a few connections: an echo
// closed normally, a refused origin, a protocol error, and a chat visit.
func TestTranscripts(t *testing.T) {
	addr, out := start(t, nil)
	var remotes []string

	ws := booktest.DialWS(t, addr, "/echo")
	remotes = append(remotes, ws.LocalAddr().String())
	require.NoError(t, ws.Send(0x81, []byte("Hello")))
	_, _, err := ws.ReadMessage()
	require.NoError(t, err)
	require.NoError(t, ws.Send(0x88, []byte{0x03, 0xE8}))
	_, _, err = ws.ReadMessage()
	require.NoError(t, err)
	ws.Close()
	out.WaitFor(t, "code=1000")

	_, resp, err := booktest.TryDialWS(addr, "/echo", "Origin: http://evil.example")
	require.NoError(t, err)
	require.Equal(t, 403, resp.StatusCode)
	out.WaitFor(t, "status=403")

	ws = booktest.DialWS(t, addr, "/echo")
	remotes = append(remotes, ws.LocalAddr().String())
	_, err = ws.Write(rfcUnmaskedHello)
	require.NoError(t, err)
	_, _, err = ws.ReadMessage()
	require.NoError(t, err)
	ws.Close()
	out.WaitFor(t, "code=1002")

	ann := joinChat(t, addr, "ann")
	remotes = append(remotes, ann.LocalAddr().String())
	ann.next()
	ann.next()
	ann.say("hi")
	ann.next()
	require.NoError(t, ann.Send(0x88, []byte{0x03, 0xE9}))
	ann.ReadMessage()
	ann.Close()
	got := out.WaitFor(t, "name=ann code=1001")

	// Times and client ports change from run to run.
	got = regexp.MustCompile(`(?m)^time=\S+ `).ReplaceAllString(got, "")
	got = regexp.MustCompile(`remote=127\.0\.0\.1:\d+`).ReplaceAllStringFunc(got, func(r string) string {
		for i, a := range remotes {
			if strings.HasSuffix(r, a) {
				return fmt.Sprintf("remote=127.0.0.1:5123%d", 4+i)
			}
		}
		return "remote=127.0.0.1:51240"
	})
	booktest.Transcript(t, "docs/06-full-server.md", "06 session", got)
}

// A close reason cut to fit a control frame is cut between characters.
func TestALongCloseReasonStaysUTF8(t *testing.T) {
	addr, _ := start(t, nil)
	name := strings.Repeat("𝒜", 32) // 32 characters, 128 bytes
	joinChat(t, addr, url.QueryEscape(name)).next()
	ws := booktest.DialWS(t, addr, "/ws?name="+url.QueryEscape(name))
	op, payload, err := ws.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, byte(opClose), op)
	assert.LessOrEqual(t, len(payload), 125)
	assert.True(t, utf8.Valid(payload[2:]), "reason %q", payload[2:])
	assert.Contains(t, string(payload[2:]), "the name")
}

// After its close frame the server sends nothing more, not even a pong,
// and still completes the closing handshake when the peer answers.
func TestNothingFollowsTheServersClose(t *testing.T) {
	addr, out := start(t, nil)
	ws := booktest.DialWS(t, addr, "/ws") // no name: the server closes with 1008
	op, payload, err := ws.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, byte(opClose), op)
	require.NoError(t, ws.Send(0x89, []byte("still there?")))
	require.NoError(t, ws.Send(0x88, payload[:2]))
	_, err = ws.ReadFrame()
	assert.ErrorIs(t, err, io.EOF, "no pong, just the end of the connection")
	ws.Close()
	got := out.WaitFor(t, "code=1008")
	assert.NotContains(t, got, "connection lost")
}

// Text sent after the server closed a chat connection (here with 1003, for
// a binary message) does not reach the room.
func TestChatIgnoresTextAfterClosing(t *testing.T) {
	addr, _ := start(t, nil)
	ann := joinChat(t, addr, "ann")
	ann.next()
	ann.next()
	bob := joinChat(t, addr, "bob")
	bob.next()
	bob.next()
	ann.next() // bob joined

	require.NoError(t, bob.Send(0x82, []byte{1, 2, 3}))
	require.NoError(t, bob.Send(0x81, []byte("sent after the close")))
	op, payload, err := bob.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, byte(opClose), op)
	assert.Equal(t, closeUnsupported, booktest.CloseCode(payload))
	require.NoError(t, bob.Send(0x88, payload[:2]))
	bob.Close()

	assert.Equal(t, event{Type: "leave", Name: "bob", Reason: "left"}, ann.next(), "and no message before it")
}

func TestFlags(t *testing.T) {
	cfg, addr, err := parseFlags([]string{"-addr", "127.0.0.1:0", "-origin", "http://a,http://b", "-max-message", "1024", "-ping-interval", "1m"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:0", addr)
	assert.Equal(t, []string{"http://a", "http://b"}, cfg.origins)
	assert.Equal(t, 1024, cfg.limits.MaxMessage)
	assert.Equal(t, time.Minute, cfg.limits.PingInterval)
	assert.Equal(t, 4<<10, cfg.maxChatMessage, "the chat keeps its own message limit")

	_, _, err = parseFlags([]string{"-max-message", "lots"}, io.Discard)
	assert.Error(t, err)
	// A rate of 0 would divide by zero at the first chat message.
	for _, flag := range []string{"-chat-rate", "-max-message", "-chat-backlog", "-max-message-memory"} {
		_, _, err = parseFlags([]string{flag, "0"}, io.Discard)
		assert.ErrorContains(t, err, flag+" must be above 0", flag)
	}
}

// The docs show what -h prints.
func TestTranscriptOfTheFlags(t *testing.T) {
	var usage strings.Builder
	_, _, err := parseFlags([]string{"-h"}, &usage)
	assert.ErrorIs(t, err, flag.ErrHelp)
	booktest.Transcript(t, "docs/06-full-server.md", "06 flags", usage.String())
}

// A kept-alive HTTP connection that sends no next request is closed.
func TestAnIdleHTTPConnectionIsClosed(t *testing.T) {
	addr, _ := start(t, func(c *config) { c.idleTimeout = 200 * time.Millisecond })
	resp, body, conn := booktest.Request(t, addr, "GET / HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, string(page), body)
	started := time.Now()
	_, err := conn.R.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "the server closed the idle connection")
	assert.Less(t, time.Since(started), 3*time.Second)
}
