package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// hub is the chat room. Every message goes to everyone, the sender
// included, in the order the hub received them: broadcast holds the hub's
// lock while it queues a message for every client, so no two messages can
// be queued in different orders for two clients.
//
// A client never delays anyone else. Each has a queue and a goroutine that
// writes out everything queued, in one system call; broadcast only adds to
// queues. A client whose queue holds more than backlog bytes has fallen too
// far behind through its own slowness (a client that reads keeps its queue
// near empty, even in a storm of joins and leaves, and a sender may not
// send faster than keepPace allows): it is dropped, and the others hear
// that it left. If it still reads, it gets a close frame with 1008; if it
// has stopped reading, it cannot, and its connection is closed within
// CloseTimeout.
type hub struct {
	mu      sync.Mutex
	clients map[string]*client // by lower-case name
	online  []string           // their names, sorted, for the welcome
	backlog int                // bytes a client's queue may hold
	log     *slog.Logger
}

type client struct {
	name    string
	conn    *Conn
	wake    chan struct{} // holds a token when there is something for the writer to do
	clearAt time.Time     // when what it has sent is paid for, at the room's rate (keepPace)

	mu      sync.Mutex
	queue   [][]byte // frames encoded once for everyone, waiting to be written
	queued  int      // their bytes
	dropped bool     // the hub has let the client go: the writer sends nothing more
	tooSlow bool     // dropped because its queue was full, for reason:
	reason  string
}

// event is what the room says, as JSON text messages. A client that joins
// first gets a welcome with who is online; everyone (the newcomer too)
// then hears of each join, message and leave:
//
//	{"type":"welcome","name":"bob","online":["ann","bob"]}
//	{"type":"join","name":"bob"}
//	{"type":"message","name":"ann","text":"hello"}
//	{"type":"leave","name":"ann","reason":"left"}
//
// The online list goes only to the newcomer: sent with every join, it would
// make 1000 joins cost a million names.
type event struct {
	Type   string   `json:"type"`
	Name   string   `json:"name"`
	Text   string   `json:"text,omitempty"`
	Reason string   `json:"reason,omitempty"`
	Online []string `json:"online,omitempty"`
}

// join adds a client to the room and tells everyone, or says why it may not
// join.
func (h *hub) join(name string, conn *Conn) (*client, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	key := strings.ToLower(name)
	if _, taken := h.clients[key]; taken {
		return nil, fmt.Errorf("the name %q is taken", name)
	}
	c := &client{name: name, conn: conn, wake: make(chan struct{}, 1)}
	h.clients[key] = c
	at, _ := slices.BinarySearch(h.online, name)
	h.online = slices.Insert(h.online, at, name)
	// The welcome is the client's own, and in a big room it is big: it
	// does not count against the backlog, which measures falling behind
	// the room. It is queued before the writer starts.
	c.queue = append(c.queue, textFrame(event{Type: "welcome", Name: name, Online: h.online}))
	c.signal()
	go c.writeQueue()
	h.broadcastLocked(event{Type: "join", Name: name})
	return c, nil
}

// validName accepts 1 to 32 letters, digits, spaces and "-_." characters.
func validName(name string) error {
	n := utf8.RuneCountInString(name)
	if n == 0 || n > 32 || strings.TrimSpace(name) != name {
		return fmt.Errorf("a name has 1 to 32 characters, with no space at either end: /ws?name=NICK")
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune(" -_.", r) {
			return fmt.Errorf("a name may hold letters, digits, spaces and -_. but not %q", r)
		}
	}
	return nil
}

// say sends a client's message to the room. It returns the size of the
// frame each client gets, which is what the message costs the room (an
// empty message is still a frame with a name).
func (h *hub) say(from *client, text string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.clients[strings.ToLower(from.name)] != from {
		return 0 // dropped meanwhile
	}
	return h.broadcastLocked(event{Type: "message", Name: from.name, Text: text})
}

// keepPace makes a sender whose message has just cost the room n bytes
// (the frame every client gets, which an empty message has too) wait, if
// it sends faster than rate bytes a second beyond a burst of a quarter
// second's worth. A room's clients can only take messages as fast as their
// writers get to run, and one client that pours in a thousand messages at
// once would fill everyone's queue and have them all dropped as too slow. The
// wait holds up only the sender: it reads nothing meanwhile, so what it
// sends waits in its own socket. Only the client's reading goroutine calls
// keepPace.
func (c *client) keepPace(n, rate int) {
	now := time.Now()
	if c.clearAt.Before(now) {
		c.clearAt = now
	}
	c.clearAt = c.clearAt.Add(time.Duration(n) * time.Second / time.Duration(rate))
	if wait := c.clearAt.Sub(now) - time.Second/4; wait > 0 {
		time.Sleep(wait)
	}
}

// leave removes a client that has gone, and tells the others.
func (h *hub) leave(c *client, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.removeLocked(c, reason, false) {
		h.broadcastLocked(event{Type: "leave", Name: c.name, Reason: reason})
	}
}

// removeLocked takes a client out of the room, once, and reports whether
// it was still in it.
func (h *hub) removeLocked(c *client, reason string, tooSlow bool) bool {
	key := strings.ToLower(c.name)
	if h.clients[key] != c {
		return false // already gone
	}
	delete(h.clients, key)
	if at, found := slices.BinarySearch(h.online, c.name); found {
		h.online = slices.Delete(h.online, at, at+1)
	}
	c.drop(reason, tooSlow)
	return true
}

// broadcastLocked encodes the event once, as a complete frame, and queues
// it for every client. It never waits: a client whose queue is full is
// dropped, and the others then hear that it left. Those leaves are
// broadcast in turn, from a list rather than by recursion, so each drop is
// logged and announced once, and the hub's lock is held for work in
// proportion to what happened.
//
// It returns the size of e's frame.
func (h *hub) broadcastLocked(e event) (size int) {
	events := []event{e}
	for len(events) > 0 {
		frame := textFrame(events[0])
		events = events[1:]
		if size == 0 {
			size = len(frame)
		}
		for _, c := range h.clients {
			if c.push(frame, h.backlog) {
				continue
			}
			reason := fmt.Sprintf("too slow: fell over %d bytes behind", h.backlog)
			h.log.Info("chat client dropped", "name", c.name, "reason", "too slow")
			h.removeLocked(c, reason, true) // deleting during range is safe in Go
			events = append(events, event{Type: "leave", Name: c.name, Reason: reason})
		}
	}
	return size
}

// textFrame encodes an event as a complete text frame. The JSON is
// written as it is, without the escaping of <, > and & that json.Marshal
// adds for HTML pages: a browser's JSON.parse does not need it, and it
// would make a 4 KiB message of "<" a 24 KiB frame for every client.
func textFrame(e event) []byte {
	var text bytes.Buffer
	enc := json.NewEncoder(&text)
	enc.SetEscapeHTML(false)
	enc.Encode(e) // an event has only strings: it always encodes
	return appendFrame(nil, true, opText, bytes.TrimSuffix(text.Bytes(), []byte("\n")))
}

// push queues a frame for the client's writer, unless the queue would then
// hold more than backlog bytes (an empty queue takes any frame). It never
// waits.
func (c *client) push(frame []byte, backlog int) bool {
	c.mu.Lock()
	fits := c.queued == 0 || c.queued+len(frame) <= backlog
	if fits {
		c.queue = append(c.queue, frame)
		c.queued += len(frame)
	}
	c.mu.Unlock()
	if fits {
		c.signal()
	}
	return fits
}

// drop tells the client's writer to stop. A client dropped for being too
// slow has its closing handshake started at once: a write stuck on it gives
// up within CloseTimeout, and the writer then tries to send the close frame
// that says why.
func (c *client) drop(reason string, tooSlow bool) {
	c.mu.Lock()
	c.dropped, c.tooSlow, c.reason = true, tooSlow, reason
	c.mu.Unlock()
	if tooSlow {
		c.conn.setCloseDeadline()
	}
	c.signal()
}

func (c *client) signal() {
	select {
	case c.wake <- struct{}{}:
	default: // a token is already waiting: the writer will see this too
	}
}

// writeQueue is the client's writer: it sends what is queued, all of it at
// once, until the hub drops the client. A client dropped for being too slow
// gets a close frame that says so, if it reads at all.
func (c *client) writeQueue() {
	var batch [][]byte
	for range c.wake {
		c.mu.Lock()
		batch, c.queue = c.queue, batch[:0]
		c.queued = 0
		dropped, tooSlow, reason := c.dropped, c.tooSlow, c.reason
		c.mu.Unlock()
		if dropped {
			// A dropped client gets nothing more, even with frames queued.
			if tooSlow {
				c.conn.Close(closePolicy, reason)
			}
			return
		}
		err := c.conn.writePrepared(batch)
		clear(batch) // let the frames go: the next batch reuses the slice
		if err != nil {
			return // the connection is closing; its reader tells the hub
		}
	}
}
