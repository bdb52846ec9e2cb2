package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
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
	addr, _ := start(b, func(c *config) { c.queueLen = 256 })
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
