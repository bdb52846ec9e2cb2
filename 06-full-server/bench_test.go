package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"wsbook/internal/booktest"
)

// benchClient is the client side of the benchmarks: it writes one frame,
// masked once in advance, and reads the server's frames into one buffer, so
// that what -benchmem reports is the server's cost, not the client's.
type benchClient struct {
	conn  net.Conn
	r     *bufio.Reader
	frame []byte // the masked frame to send
	size  int    // the size of its payload
	head  [10]byte
	buf   []byte
}

func newBenchClient(b *testing.B, addr, path string, first byte, payload []byte) *benchClient {
	ws := booktest.DialWS(b, addr, path)
	return &benchClient{conn: ws.Conn, r: bufio.NewReaderSize(ws.R, 64<<10),
		frame: booktest.ClientFrame(first, payload, testKey), size: len(payload), buf: make([]byte, 0, len(payload))}
}

// readMessage reads one unfragmented server frame and returns its payload.
func (c *benchClient) readMessage() ([]byte, error) {
	h := c.head[:]
	if _, err := io.ReadFull(c.r, h[:2]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7F)
	switch n {
	case 126:
		if _, err := io.ReadFull(c.r, h[2:4]); err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		if _, err := io.ReadFull(c.r, h[2:10]); err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint64(h[2:10]))
	}
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	c.buf = c.buf[:n]
	_, err := io.ReadFull(c.r, c.buf)
	return c.buf, err
}

func (c *benchClient) roundTrip() error {
	if _, err := c.conn.Write(c.frame); err != nil {
		return err
	}
	got, err := c.readMessage()
	if err == nil && len(got) != c.size {
		err = fmt.Errorf("sent %d bytes, got %d back", c.size, len(got))
	}
	return err
}

// BenchmarkEcho measures round trips through /echo over loopback: the
// client sends a message and waits for it to come back, on 1 to 50
// connections at once.
func BenchmarkEcho(b *testing.B) {
	for _, bc := range []struct {
		name  string
		conns int
		first byte
		size  int
	}{
		{"1conn-32B-text", 1, 0x81, 32},
		{"50conns-1KiB-text", 50, 0x81, 1 << 10},
		{"1conn-4KiB-binary", 1, 0x82, 4 << 10},
		{"4conns-64KiB-binary", 4, 0x82, 64 << 10},
		{"1conn-1MiB-binary", 1, 0x82, 1 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			addr, _ := start(b, nil)
			payload := []byte(strings.Repeat("x", bc.size))
			clients := make([]*benchClient, bc.conns)
			for i := range clients {
				clients[i] = newBenchClient(b, addr, "/echo", bc.first, payload)
				if err := clients[i].roundTrip(); err != nil { // warm the buffers
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for i, c := range clients {
				n := b.N / bc.conns
				if i < b.N%bc.conns {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range n {
						if err := c.roundTrip(); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// BenchmarkBroadcast measures one 1 KiB chat message reaching all of 1000
// clients: an operation ends when the last one has read it.
func BenchmarkBroadcast(b *testing.B) {
	const clients = 1000
	addr, _ := start(b, func(c *config) {
		c.chatBacklog = 4 << 20
		c.chatRate = 1 << 30              // one client sends every message: measure the room, not its pacing
		c.limits.PingInterval = time.Hour // the clients below count frames and answer no pings
	})
	text := []byte(strings.Repeat("x", 1<<10))
	room := make([]*benchClient, clients)
	for i := range room {
		room[i] = newBenchClient(b, addr, fmt.Sprintf("/ws?name=c%04d", i), 0x81, text)
		// The welcome says the client is in the room: only then does the
		// next one join, so that the joins happen in this order.
		if _, err := room[i].readMessage(); err != nil {
			b.Fatal(err)
		}
	}
	// Client i hears its own join and those after it.
	for i, c := range room {
		for range clients - i {
			if _, err := c.readMessage(); err != nil {
				b.Fatal(err)
			}
		}
	}

	received := make(chan struct{}, clients)
	for _, c := range room {
		go func() {
			for {
				c.conn.SetReadDeadline(time.Now().Add(time.Minute))
				if _, err := c.readMessage(); err != nil {
					return
				}
				received <- struct{}{}
			}
		}()
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := room[0].conn.Write(room[0].frame); err != nil {
			b.Fatal(err)
		}
		for range clients {
			<-received
		}
	}
	b.StopTimer()
	for _, c := range room {
		c.conn.Close()
	}
}

// BenchmarkJoinBurst measures 2000 clients joining the room one after the
// other, as fast as the hub lets them: an operation ends when every client
// has read its welcome and every join after its own. The connections are
// made before the timer starts, so what is measured is the room's work and
// the writes it causes. cpu-ms/op is the process's CPU time (user +
// system), the clients' reading included.
func BenchmarkJoinBurst(b *testing.B) {
	const joins = 2000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	limits := defaultConfig().limits
	limits.MaxMessage = defaultConfig().maxChatMessage
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		servers := make([]*Conn, joins)
		clientEnds := make([]net.Conn, joins)
		var heard sync.WaitGroup
		var dropped atomic.Bool
		heard.Add(joins)
		for i := range joins {
			client, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			clientEnds[i] = client
			server, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			servers[i] = newConn(server, nil, &limits, &messageMemory{max: 1 << 30})
			go countFrames(client, joins-i+1, &heard, &dropped) // its welcome, its join and those after it
		}
		h := newServer(defaultConfig(), io.Discard).hub
		clients := make([]*client, joins)
		b.StartTimer()

		before := cpuTime()
		for i, conn := range servers {
			if clients[i], err = h.join(fmt.Sprintf("user%04d", i), conn); err != nil {
				b.Fatal(err)
			}
		}
		heard.Wait()
		cpu += cpuTime() - before
		if dropped.Load() {
			b.Fatal("the room dropped a client during the burst")
		}

		b.StopTimer()
		for i, c := range clients {
			h.leave(c, "left")
			servers[i].closeNow()
			clientEnds[i].Close() // now, not when the benchmark ends: a fast run makes many bursts
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// BenchmarkIdle opens 2000 /echo connections, each of which sends one
// 32-byte message and reads it back, then leaves them idle, and reports
// what the process's live heap and goroutine stacks grew by, per
// connection, once the sweep has handed them over (to the poller, on
// Linux). Both ends are in this process: the client's end is a bare
// net.Conn, a few hundred bytes of the heap figure. Each operation waits
// until the last one's connections have ended on the server too.
// internal/bench measures the server's whole resident memory instead, in a
// process of its own.
func BenchmarkIdle(b *testing.B) {
	const conns = 2000
	cfg := defaultConfig()
	cfg.limits.PingInterval = time.Hour
	s, addr := serveFor(b, cfg, io.Discard)
	open := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns)
	}
	payload := []byte(strings.Repeat("x", 32))
	frame := booktest.ClientFrame(0x81, payload, testKey)
	echo := make([]byte, 2+len(payload))
	var perConn, heapPer, stackPer float64
	for b.Loop() {
		before := liveMemory()
		clients := make([]net.Conn, conns)
		for i := range clients {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			clients[i] = c
			fmt.Fprintf(c, "GET /echo HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
			r := bufio.NewReaderSize(c, 16)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					b.Fatal(err)
				}
				if line == "\r\n" {
					break
				}
			}
			c.Write(frame)
			if _, err := io.ReadFull(r, echo); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(3 * idleAfter) // two sweeps, and the handover
		after := liveMemory()
		heapPer = float64(int64(after.heap)-int64(before.heap)) / conns
		stackPer = float64(int64(after.stack)-int64(before.stack)) / conns
		perConn = heapPer + stackPer
		b.StopTimer()
		for _, c := range clients {
			c.Close()
		}
		for open() > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		b.StartTimer()
	}
	b.ReportMetric(perConn, "B/conn")
	b.ReportMetric(heapPer, "heap-B/conn")
	b.ReportMetric(stackPer, "stack-B/conn")
}

type live struct{ heap, stack uint64 }

func liveMemory() live {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return live{m.HeapAlloc, m.StackInuse}
}

// countFrames reads server frames from conn and marks wg done once want
// of them have arrived; it reads on, and discards, until conn closes. A
// close frame before that sets dropped.
func countFrames(conn net.Conn, want int, wg *sync.WaitGroup, dropped *atomic.Bool) {
	r := bufio.NewReader(conn)
	var h [8]byte
	for n := 1; ; n++ {
		if _, err := io.ReadFull(r, h[:2]); err != nil {
			if n <= want {
				wg.Done() // the benchmark fails on its own; do not hang it
			}
			return
		}
		opcode, length := h[0]&0x0F, int(h[1]&0x7F)
		switch length {
		case 126:
			io.ReadFull(r, h[:2])
			length = int(binary.BigEndian.Uint16(h[:2]))
		case 127:
			io.ReadFull(r, h[:8])
			length = int(binary.BigEndian.Uint64(h[:8]))
		}
		r.Discard(length)
		if opcode == opClose && n <= want {
			dropped.Store(true)
			wg.Done()
			return
		}
		if n == want {
			wg.Done()
		}
	}
}

// cpuTime is the CPU time this process has used so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
