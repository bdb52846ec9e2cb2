package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

// What a hostile peer, or a crowd, can do to the server, and what it must
// cost: each client only its own share.

// A burst of leaves, some polite (close 1001, as a closing tab sends) and
// some abrupt (a TCP reset), must not cost the clients who stay anything:
// none of them is dropped, and the log says one thing per leaver.
func TestALeaveStormDropsNobodyElse(t *testing.T) {
	const stayers, leavers = 300, 100
	addr, out := start(t, nil)

	var dropped sync.Map // names of stayers that got a close frame
	var wg sync.WaitGroup
	for i := range stayers {
		c := joinChat(t, addr, fmt.Sprintf("stay%03d", i))
		require.Equal(t, "welcome", c.next().Type)
		wg.Add(1)
		go func() { // a client that reads normally, until it has heard every leave
			defer wg.Done()
			leaves := 0
			for leaves < leavers {
				op, payload, err := c.ReadMessage()
				if err != nil {
					dropped.Store(c, err.Error())
					return
				}
				if op == opClose {
					dropped.Store(c, fmt.Sprintf("close %d %s", booktest.CloseCode(payload), payload[2:]))
					return
				}
				if op == opText && strings.Contains(string(payload), `"type":"leave"`) {
					leaves++
				}
			}
		}()
	}
	leaving := make([]*chatClient, leavers)
	for i := range leaving {
		leaving[i] = joinChat(t, addr, fmt.Sprintf("leave%03d", i))
		require.Equal(t, "welcome", leaving[i].next().Type)
	}
	logBefore := strings.Count(out.String(), "\n")

	// All at once: half of them reset, half say goodbye.
	var start sync.WaitGroup
	start.Add(1)
	for i, c := range leaving {
		go func() {
			start.Wait()
			if i%2 == 0 {
				c.Conn.(*net.TCPConn).SetLinger(0) // close with a reset
			} else {
				c.Send(0x88, closeBody(closeGoingAway, ""))
			}
			c.Close()
		}()
	}
	start.Done()
	wg.Wait()

	dropped.Range(func(c, why any) bool {
		t.Errorf("a client that stayed was dropped: %v", why)
		return true
	})
	assert.NotContains(t, out.String(), "chat client dropped")
	// One line for each leaver's end, and little else.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Count(out.String(), "\n")-logBefore >= leavers {
			break
		}
	}
	assert.LessOrEqual(t, strings.Count(out.String(), "\n")-logBefore, 2*leavers, "log lines for %d leaves", leavers)
}

// A frame header that declares 16 MiB, followed by a single byte, costs
// what arrived, not what was declared.
func TestADeclaredLengthReservesNothing(t *testing.T) {
	const peers = 50
	addr, _ := start(t, nil)
	warm := booktest.DialWS(t, addr, "/echo") // the server's first connection sets up what every one shares
	warm.Close()

	header := append(booktest.ClientFrameHeader(0x82, 16<<20, testKey), 0xAB) // 14 bytes of header, 1 of payload
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range peers {
		ws := booktest.DialWS(t, addr, "/echo")
		_, err := ws.Write(header)
		require.NoError(t, err)
	}
	time.Sleep(300 * time.Millisecond) // let the server read every header
	runtime.ReadMemStats(&after)
	grown := int64(after.TotalAlloc - before.TotalAlloc)
	t.Logf("%d peers declaring 16 MiB and sending 1 byte: %d KiB allocated", peers, grown>>10)
	assert.Less(t, grown, int64(8<<20), "memory set aside for bytes that never came")
}

// Invalid UTF-8 early in a long text frame fails the connection at once,
// not when the rest of the frame arrives (which here it never does).
func TestInvalidUTF8FailsBeforeTheFrameEnds(t *testing.T) {
	addr, _ := start(t, nil)
	ws := booktest.DialWS(t, addr, "/echo")
	text := []byte("valid, then \xff and much more to come")
	text = append(text, make([]byte, 1000)...)
	frame := booktest.ClientFrame(0x81, text, testKey)
	_, err := ws.Write(frame[:8+20]) // the header and 20 bytes: the bad byte is among them
	require.NoError(t, err)

	ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	f, err := ws.ReadFrame()
	require.NoError(t, err, "no close frame while the rest of the frame is still to come")
	assert.Equal(t, byte(opClose), f.Opcode)
	assert.Equal(t, closeInvalidData, booktest.CloseCode(f.Payload))
}

// A handshake is a GET without a body: bytes after the head would be read
// as frames.
func TestAHandshakeWithABodyIsRefused(t *testing.T) {
	addr, _ := start(t, nil)
	for _, tc := range []struct {
		header string
		status int
	}{
		{"Transfer-Encoding: chunked", 400},
		{"Content-Length: 5", 400},
		{"Content-Length: 0", 101},
	} {
		t.Run(tc.header, func(t *testing.T) {
			ws, resp, err := booktest.TryDialWS(addr, "/echo", tc.header)
			require.NoError(t, err)
			assert.Equal(t, tc.status, resp.StatusCode)
			if ws != nil {
				ws.Close()
			}
		})
	}
}

// A server on a loopback address answers only to loopback names: a page on
// a domain that rebinds to 127.0.0.1 sends its own name in Host and Origin.
func TestDNSRebindingIsRefused(t *testing.T) {
	addr, _ := start(t, nil)
	_, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		host   string
		status int
	}{
		{"evil.example:" + port, 403},
		{"localhost:" + port, 101},
		{"127.0.0.1:" + port, 101},
		{"[::1]:" + port, 101},
		{"LOCALHOST:" + port, 101},
		{"[::]:" + port, 101}, // what the server prints when it listens on every address
		{"0.0.0.0:" + port, 101},
		{"127.0.0.1.evil.example:" + port, 403},
	} {
		t.Run(tc.host, func(t *testing.T) {
			resp, body, conn := booktest.Request(t, addr, "GET /echo HTTP/1.1\r\nHost: "+tc.host+"\r\n"+
				"Origin: http://"+tc.host+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
			conn.Close()
			assert.Equal(t, tc.status, resp.StatusCode, body)
			if tc.status == 403 {
				assert.Contains(t, body, "DNS rebinding")
			}
		})
	}

	// Listening on every address, the server still knows a connection that
	// came in on loopback, and checks its Host.
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	require.NoError(t, err)
	s := newServer(defaultConfig(), io.Discard)
	go s.serve(ln)
	defer s.shutdown()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	resp, body, conn := booktest.Request(t, "127.0.0.1:"+port, "GET /echo HTTP/1.1\r\nHost: evil.example:"+port+"\r\n"+
		"Origin: http://evil.example:"+port+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	conn.Close()
	assert.Equal(t, 403, resp.StatusCode, body)

	// A name the server was told to answer to is allowed.
	addr, _ = start(t, func(c *config) { c.hosts = []string{"chat.example"} })
	_, port, _ = net.SplitHostPort(addr)
	resp, _, conn = booktest.Request(t, addr, "GET /echo HTTP/1.1\r\nHost: chat.example:"+port+"\r\n"+
		"Upgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	conn.Close()
	assert.Equal(t, 101, resp.StatusCode)
}

// Past the connection limit, a client is told so at once, with 503 and
// when to retry; when a connection ends, its place is free again.
func TestTheConnectionLimitRefusesPromptly(t *testing.T) {
	const limit = 20
	addr, out := start(t, func(c *config) { c.maxConns = limit })
	open := make([]*booktest.WS, limit)
	for i := range open {
		open[i] = booktest.DialWS(t, addr, "/echo")
	}
	for range 3 {
		started := time.Now()
		ws, resp, err := booktest.TryDialWS(addr, "/echo")
		require.NoError(t, err)
		require.Nil(t, ws)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.NotEmpty(t, resp.Header.Get("Retry-After"))
		assert.Less(t, time.Since(started), time.Second)
	}
	// Three refusals, counted in the log however its lines fell.
	counted := 0
	for deadline := time.Now().Add(3 * time.Second); counted < 3 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		counted = 0
		for _, m := range regexp.MustCompile(`msg="connections refused" count=(\d+)`).FindAllStringSubmatch(out.String(), -1) {
			n, _ := strconv.Atoi(m[1])
			counted += n
		}
	}
	assert.Equal(t, 3, counted, "refusals counted in the log")

	open[0].Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ws, resp, err := booktest.TryDialWS(addr, "/echo")
		require.NoError(t, err)
		if resp.StatusCode == 101 {
			require.NoError(t, ws.Send(0x81, []byte("in")))
			_, got, err := ws.ReadMessage()
			require.NoError(t, err)
			assert.Equal(t, "in", string(got))
			ws.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "the freed place was never given to a new client")
	}
}

// A client dropped for being too slow, that never reads, cannot receive
// the close frame: its buffers are full. Its TCP connection is closed
// within CloseTimeout of the drop, not after the write timeout.
func TestATooSlowClientIsCutOffPromptly(t *testing.T) {
	addr, out := start(t, func(c *config) {
		c.chatBacklog = 16 << 10
		c.chatRate = 1 << 30 // fast fills the stuck client's buffers as fast as it can
		c.limits.CloseTimeout = 200 * time.Millisecond
		c.limits.WriteTimeout = 10 * time.Second
	})
	stuck := joinChat(t, addr, "stuck")
	stuck.next()
	fast := joinChat(t, addr, "fast")
	fast.next()
	text := strings.Repeat("x", 4000)
	for !strings.Contains(out.String(), "chat client dropped") {
		fast.say(text)
		for fast.next().Type != "message" {
		}
	}
	dropped := time.Now()
	out.WaitFor(t, "path=/ws name=stuck")
	assert.Less(t, time.Since(dropped), 2*time.Second, "the connection outlived its drop")
}

// A client that pours messages into the room, many in one TCP write, must
// not get the clients who read at full speed dropped: past its rate it
// waits, and what it sends waits in its own socket.
func TestAFloodingSenderDropsNobody(t *testing.T) {
	t.Run("big messages", func(t *testing.T) { floodTheRoom(t, 40, 4000) })
	// Empty messages cost the room a frame each too (about 40 bytes).
	t.Run("empty messages", func(t *testing.T) { floodTheRoom(t, 2000, 0) })
}

func floodTheRoom(t *testing.T, burst, size int) {
	const readers = 50
	addr, out := start(t, func(c *config) { c.chatBacklog = 32 << 10 }) // the default rate: a 16 KiB burst
	var dropped sync.Map
	var wg sync.WaitGroup
	for i := range readers {
		c := joinChat(t, addr, fmt.Sprintf("reader%02d", i))
		require.Equal(t, "welcome", c.next().Type)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for got := 0; got < burst; {
				op, payload, err := c.ReadMessage()
				if err != nil || op == opClose {
					dropped.Store(c, fmt.Sprint(err, string(payload)))
					return
				}
				if strings.Contains(string(payload), `"type":"message"`) {
					got++
				}
			}
		}()
	}
	flooder := joinChat(t, addr, "flooder")
	var flood []byte
	for range burst { // all in one write
		flood = append(flood, booktest.ClientFrame(0x81, []byte(strings.Repeat("<", size)), testKey)...)
	}
	go func() {
		flooder.Write(flood)
		for { // read what the room says, as a client does
			if _, _, err := flooder.ReadMessage(); err != nil {
				return
			}
		}
	}()
	wg.Wait()
	dropped.Range(func(_, why any) bool {
		t.Errorf("a reader was dropped: %v", why)
		return true
	})
	assert.NotContains(t, out.String(), "chat client dropped")
}

// The welcome lists everyone online, and in a big room it is bigger than
// the backlog: it still arrives, and the newcomer is not taken for slow.
func TestAWelcomeBiggerThanTheBacklogArrives(t *testing.T) {
	addr, out := start(t, func(c *config) { c.chatBacklog = 2 << 10 })
	for i := range 200 { // 200 names of 20 bytes: a 5 KiB welcome
		c := joinChat(t, addr, fmt.Sprintf("a-rather-long-name%02d", i))
		e := c.next()
		require.Equal(t, "welcome", e.Type)
		require.Len(t, e.Online, i+1)
	}
	assert.NotContains(t, out.String(), "chat client dropped")
}

// Many peers that each send most of a large message and stall cannot take
// all the server's memory: past -max-message-memory, a message is refused
// with 1013 (try again later), and the memory is given back when the
// connections end.
func TestMessagesShareABoundedMemory(t *testing.T) {
	addr, _ := start(t, func(c *config) { c.maxMessageMemory = 8 << 20 })
	frame := booktest.ClientFrame(0x82, make([]byte, 16<<20), testKey)[:14+3<<20] // a 16 MiB frame, 3 MiB of it sent
	var refused int
	var stalled []*booktest.WS
	for range 4 {
		ws := booktest.DialWS(t, addr, "/echo")
		_, err := ws.Write(frame)
		require.NoError(t, err)
		ws.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		f, err := ws.ReadFrame()
		if err == nil {
			require.Equal(t, byte(opClose), f.Opcode)
			assert.Equal(t, closeTryAgainLater, booktest.CloseCode(f.Payload))
			refused++
		}
		stalled = append(stalled, ws)
	}
	// Each stalled peer holds 4 MiB (its 3 MiB, in a buffer that doubled):
	// two fit in 8 MiB, the others are refused.
	assert.Equal(t, 2, refused)

	for _, ws := range stalled {
		ws.Close()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ws := booktest.DialWS(t, addr, "/echo")
		require.NoError(t, ws.Send(0x82, make([]byte, 6<<20)))
		op, got, err := ws.ReadMessage()
		ws.Close()
		if err == nil && op == opBinary {
			assert.Len(t, got, 6<<20)
			break
		}
		require.True(t, time.Now().Before(deadline), "the memory was never given back: %v %d", err, op)
	}
}

// quietClients opens n connections to /echo, each of which echoes one
// message and goes quiet.
func quietClients(t *testing.T, addr string, n int) []*booktest.WS {
	clients := make([]*booktest.WS, n)
	for i := range clients {
		clients[i] = booktest.DialWS(t, addr, "/echo")
		require.NoError(t, clients[i].Send(0x81, []byte("hi")))
		_, got, err := clients[i].ReadMessage()
		require.NoError(t, err)
		require.Equal(t, "hi", string(got))
	}
	return clients
}

// goroutinesAbove waits up to 5 s for the process to have fewer than limit
// goroutines more than base, and returns how many more it has.
func goroutinesAbove(base, limit int) int {
	extra := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if extra = runtime.NumGoroutine() - base; extra < limit {
			break
		}
	}
	return extra
}

// A crowd of quiet connections costs no goroutine each: after two sweeps,
// their waits are handed to the poller (on Linux; elsewhere, to goroutines
// on the smallest stack). Each still answers when it speaks again.
func TestQuietConnectionsHoldNoGoroutine(t *testing.T) {
	addr, _ := start(t, func(c *config) { c.limits.PingInterval = time.Hour })
	const n = 100
	base := runtime.NumGoroutine()
	clients := quietClients(t, addr, n)
	if runtime.GOOS == "linux" {
		assert.Less(t, goroutinesAbove(base, n/10), n/10, "goroutines left for %d quiet connections", n)
	}
	for i, c := range clients {
		text := fmt.Sprintf("again %d", i)
		require.NoError(t, c.Send(0x81, []byte(text)))
		_, got, err := c.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, text, string(got))
	}
}

// A quiet connection handed over to the poller is still pinged, and
// dropped when its peer does not answer.
func TestAParkedConnectionThatAnswersNoPingIsDropped(t *testing.T) {
	addr, out := start(t, func(c *config) {
		c.limits.PingInterval, c.limits.PongTimeout = 500*time.Millisecond, 300*time.Millisecond
	})
	silent := booktest.DialWS(t, addr, "/echo")
	started, pings := time.Now(), 0
	for {
		f, err := silent.ReadFrame()
		if err != nil {
			break
		}
		assert.Equal(t, byte(opPing), f.Opcode)
		pings++
	}
	assert.Equal(t, 1, pings)
	assert.Less(t, time.Since(started), 2*time.Second, "dropped soon after the ping interval and the pong timeout")
	out.WaitFor(t, "connection lost")
}

// A quiet connection that answers the server's ping goes back to the
// poller: a ping or pong between messages does not keep a goroutine
// waiting for the next message.
func TestAQuietConnectionIsParkedAgainAfterAPing(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the poller is Linux's")
	}
	addr, _ := start(t, func(c *config) { c.limits.PingInterval = 500 * time.Millisecond })
	const n = 50
	base := runtime.NumGoroutine()
	clients := quietClients(t, addr, n)
	require.Less(t, goroutinesAbove(base, n/5), n/5, "quiet connections were not parked")
	for _, c := range clients { // each answers the server's ping
		f, err := c.ReadFrame()
		require.NoError(t, err)
		require.Equal(t, byte(opPing), f.Opcode)
		require.NoError(t, c.Send(0x8A, f.Payload))
	}
	assert.Less(t, goroutinesAbove(base, n/5), n/5, "goroutines left after the pongs, for %d quiet connections", n)
}
