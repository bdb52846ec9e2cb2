package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// echoScenario is one echo load: conns connections, each sending a message
// of size bytes and waiting for it to come back before sending the next.
type echoScenario struct {
	name   string
	conns  int
	opcode byte // 1 text, 2 binary
	size   int
}

var echoScenarios = []echoScenario{
	{"1 conn, 32 B text", 1, 1, 32},
	{"50 conns, 1 KiB text", 50, 1, 1 << 10},
	{"4 conns, 64 KiB binary", 4, 2, 64 << 10},
	{"1 conn, 1 MiB binary", 1, 2, 1 << 20},
}

// echoTrial opens the scenario's connections to s, warms them up with a
// few checked round trips, then runs round trips on all of them at once
// for d. It returns messages per second (round trips completed, divided by
// the time from the start until the last connection finished its last one)
// and the server's CPU time per message.
func echoTrial(s *server, sc echoScenario, d time.Duration) (rate float64, cpu time.Duration, err error) {
	payload := bytes.Repeat([]byte("x"), sc.size)
	frame := clientFrame(sc.opcode, payload)
	clients := make([]*wsClient, sc.conns)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.conn.Close()
			}
		}
	}()
	for i := range clients {
		c, err := dial(s.addr, "/echo", 64<<10)
		if err != nil {
			return 0, 0, err
		}
		clients[i] = c
		for range 3 {
			if err := c.roundTrip(frame, payload, true); err != nil {
				return 0, 0, fmt.Errorf("%s /echo: %w", s.name, err)
			}
		}
	}
	cpu0, err := s.cpu()
	if err != nil {
		return 0, 0, err
	}

	var stop atomic.Bool
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	start := time.Now()
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(0)
			for !stop.Load() {
				if err := c.roundTrip(frame, payload, false); err != nil {
					errs <- err
					break
				}
				n++
			}
			total.Add(n)
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, err := s.cpu()
	if err != nil {
		return 0, 0, err
	}
	select {
	case err := <-errs:
		return 0, 0, fmt.Errorf("%s /echo: %w", s.name, err)
	default:
	}
	n := total.Load()
	return float64(n) / elapsed.Seconds(), (cpu1 - cpu0) / time.Duration(max(n, 1)), nil
}

// chatRoom is clients connections to a server's chat room, each with a
// goroutine that reads what the room says and counts the chat messages.
type chatRoom struct {
	clients  []*wsClient
	frame    []byte        // the 1 KiB text message client 0 says
	heard    atomic.Int64  // members that have heard the current message
	everyone chan struct{} // a value when all have
	failed   chan error
}

// chatText is the text of the broadcast: 1 KiB.
var chatText = strings.Repeat("x", 1<<10)

// openRoom joins clients members to s's chat room, one after the other:
// each waits for its welcome before the next joins.
func openRoom(s *server, clients int) (*chatRoom, error) {
	room := &chatRoom{frame: clientFrame(1, []byte(chatText)), everyone: make(chan struct{}, 1), failed: make(chan error, clients)}
	for i := range clients {
		c, err := dial(s.addr, fmt.Sprintf("/ws?name=c%04d", i), 4<<10)
		if err != nil {
			room.close()
			return nil, fmt.Errorf("%s: client %d: %w", s.name, i, err)
		}
		room.clients = append(room.clients, c)
		if _, msg, err := c.readMessage(); err != nil || !bytes.HasPrefix(msg, []byte(`{"type":"welcome"`)) {
			room.close()
			return nil, fmt.Errorf("%s: client %d: no welcome: %q %v", s.name, i, msg, err)
		}
		go room.listen(c)
	}
	return room, nil
}

// listen reads c's events: joins and leaves are skipped, chat messages
// counted.
func (r *chatRoom) listen(c *wsClient) {
	prefix := []byte(`{"type":"message"`)
	for {
		_, msg, err := c.readMessage()
		if err != nil {
			r.failed <- err
			return
		}
		if bytes.HasPrefix(msg, prefix) && int(r.heard.Add(1)) == len(r.clients) {
			r.everyone <- struct{}{}
		}
	}
}

func (r *chatRoom) close() {
	for _, c := range r.clients {
		c.conn.Close()
	}
}

// broadcast has client 0 say the message and waits until every member,
// client 0 included, has heard it.
func (r *chatRoom) broadcast() error {
	r.heard.Store(0)
	if _, err := r.clients[0].conn.Write(r.frame); err != nil {
		return err
	}
	select {
	case <-r.everyone:
		return nil
	case err := <-r.failed:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("a broadcast took over 30 s")
	}
}

// broadcastTrial sends one message after another for d, each once the last
// has reached everyone, and returns broadcasts per second and the server's
// CPU time per broadcast.
func broadcastTrial(s *server, r *chatRoom, d time.Duration) (rate float64, cpu time.Duration, err error) {
	for range 3 {
		if err := r.broadcast(); err != nil {
			return 0, 0, err
		}
	}
	cpu0, err := s.cpu()
	if err != nil {
		return 0, 0, err
	}
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if err := r.broadcast(); err != nil {
			return 0, 0, err
		}
		n++
	}
	elapsed := time.Since(start)
	cpu1, err := s.cpu()
	if err != nil {
		return 0, 0, err
	}
	return float64(n) / elapsed.Seconds(), (cpu1 - cpu0) / time.Duration(max(n, 1)), nil
}

// idleMemory starts a fresh server, opens conns connections to its /echo,
// each of which sends one 32-byte message and reads it back, then leaves
// them idle; it returns the growth of the server's resident memory divided
// by conns.
func idleMemory(name string, bins map[string]string, conns int) (float64, error) {
	s, err := startServer(name, bins)
	if err != nil {
		return 0, err
	}
	defer s.stop()
	payload := []byte(strings.Repeat("x", 32))
	frame := clientFrame(1, payload)
	// A few connections first, so that what every server sets up once
	// (its first goroutines, pools, buffers) is in the baseline.
	for range 10 {
		c, err := dial(s.addr, "/echo", 4<<10)
		if err != nil {
			return 0, err
		}
		err = c.roundTrip(frame, payload, true)
		c.conn.Close()
		if err != nil {
			return 0, err
		}
	}
	time.Sleep(300 * time.Millisecond)
	before, err := s.rss()
	if err != nil {
		return 0, err
	}

	clients := make([]*wsClient, conns)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.conn.Close()
			}
		}
	}()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= conns {
					return
				}
				c, err := dial(s.addr, "/echo", 4<<10)
				if err == nil {
					clients[i] = c
					err = c.roundTrip(frame, payload, false)
				}
				if err != nil {
					errs <- fmt.Errorf("%s: connection %d: %w", name, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	time.Sleep(time.Second) // let the servers' goroutines park and their allocations settle
	after, err := s.rss()
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(conns), nil
}
