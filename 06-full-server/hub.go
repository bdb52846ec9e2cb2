package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// hub is the chat room. Every message goes to everyone, the sender
// included, in the order the hub received them: broadcast holds the hub's
// lock while it queues a message for every client, so no two messages can
// be queued in different orders for two clients.
//
// A client never delays anyone else. Each has a queue of queueLen frames
// and a goroutine that writes them out; broadcast only adds to queues, and
// a client whose queue is full has fallen too far behind: it is dropped
// with close code 1008.
type hub struct {
	mu       sync.Mutex
	clients  map[string]*client // by lower-case name
	queueLen int
	log      *slog.Logger
}

type client struct {
	name    string
	conn    *Conn
	queue   chan []byte   // frames encoded once for everyone, waiting to be written
	dropped chan struct{} // closed when the hub drops the client
	reason  string        // why it left, set before dropped is closed
	tooSlow bool          // dropped because its queue was full
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
	c := &client{name: name, conn: conn, queue: make(chan []byte, h.queueLen), dropped: make(chan struct{})}
	h.clients[key] = c
	go c.writeQueue()
	c.queue <- textFrame(event{Type: "welcome", Name: name, Online: h.onlineLocked()}) // the queue is empty: this never waits
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

// say sends a client's message to the room.
func (h *hub) say(from *client, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.clients[strings.ToLower(from.name)] != from {
		return // dropped meanwhile
	}
	h.broadcastLocked(event{Type: "message", Name: from.name, Text: text})
}

// leave removes a client that has gone, and tells the others.
func (h *hub) leave(c *client, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(c, reason, false)
}

// removeLocked takes a client out of the room, once, and tells the others.
func (h *hub) removeLocked(c *client, reason string, tooSlow bool) {
	key := strings.ToLower(c.name)
	if h.clients[key] != c {
		return // already gone
	}
	delete(h.clients, key)
	c.reason, c.tooSlow = reason, tooSlow
	close(c.dropped)
	h.broadcastLocked(event{Type: "leave", Name: c.name, Reason: reason})
}

// broadcastLocked encodes the event once, as a complete frame, and queues
// it for every client. It never waits: a full queue drops its client.
func (h *hub) broadcastLocked(e event) {
	frame := textFrame(e)
	var tooSlow []*client
	for _, c := range h.clients {
		select {
		case c.queue <- frame:
		default:
			tooSlow = append(tooSlow, c)
		}
	}
	for _, c := range tooSlow {
		h.log.Info("chat client dropped", "name", c.name, "reason", "too slow")
		h.removeLocked(c, fmt.Sprintf("too slow: fell %d messages behind", h.queueLen), true)
	}
}

// textFrame encodes an event as a complete text frame.
func textFrame(e event) []byte {
	text, _ := json.Marshal(e) // an event has only strings: it always encodes
	return appendFrame(nil, true, opText, text)
}

func (h *hub) onlineLocked() []string {
	names := make([]string, 0, len(h.clients))
	for _, c := range h.clients {
		names = append(names, c.name)
	}
	slices.Sort(names)
	return names
}

// writeQueue is the client's writer: it sends queued frames in order until
// the hub drops the client. A client dropped for being too slow gets a
// close frame that says so.
func (c *client) writeQueue() {
	for {
		select {
		case <-c.dropped:
			// Checked first: a dropped client gets nothing more, even with
			// frames still queued.
			if c.tooSlow {
				c.conn.Close(closePolicy, c.reason)
			}
			return
		default:
			select {
			case frame := <-c.queue:
				if err := c.conn.writePrepared(frame); err != nil {
					return // the connection is closing; its reader tells the hub
				}
			case <-c.dropped:
				// handled at the top of the loop
			}
		}
	}
}
