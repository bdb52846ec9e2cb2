package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// hub is the chat room. Everything the room says goes into one log, said,
// in the order the hub received it, and every client's writer sends the
// same log from where it joined: so all hear the same things in the same
// order. Each frame is encoded once, stored once, and shared.
//
// A client never delays anyone else. Its writer goroutine sends what it
// has not yet taken from the log, all of it in one system call; saying
// something only adds to the log and wakes the writers that wait. A client
// that falls more than backlog bytes behind the log has fallen behind
// through its own slowness (a client that reads keeps up, even in a storm
// of joins and leaves, and a sender may not send faster than keepPace
// allows): it is dropped, and the others hear that it left. If it still
// reads, it gets a close frame with 1008; if it has stopped reading, it
// cannot, and its connection is closed within CloseTimeout.
type hub struct {
	mu      sync.Mutex
	clients map[string]*client // by lower-case name
	online  []string           // their names, sorted, for the welcome
	said    roomLog            // what the room has said lately, as frames
	backlog int                // bytes a client may fall behind the log
	look    int64              // where in the log the hub next looks for clients too far behind
	log     *slog.Logger
}

type client struct {
	name    string
	conn    *Conn
	taken   atomic.Int64 // how far into the room's log the writer has taken: its bookmark
	started atomic.Bool  // the writer has taken its first batch: only then can the client be behind
	clearAt time.Time    // when what it has sent is paid for, at the room's rate (keepPace)

	mu      sync.Mutex
	dropped bool // the hub has let the client go: the writer sends nothing more
	tooSlow bool // dropped because it fell too far behind, for reason:
	reason  string
}

func newHub(backlog int, log *slog.Logger) *hub {
	h := &hub{clients: map[string]*client{}, backlog: backlog, look: int64(backlog), log: log}
	h.said.init()
	return h
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
	c := &client{name: name, conn: conn}
	h.clients[key] = c
	at, _ := slices.BinarySearch(h.online, name)
	h.online = slices.Insert(h.online, at, name)
	// The welcome is the client's own, and in a big room it is big: it is
	// not in the log, and does not count against the backlog, which
	// measures falling behind the room. The client's bookmark starts where
	// the log ends now: the first thing it hears after the welcome is its
	// own join.
	c.taken.Store(h.said.end())
	go c.writeLog(&h.said, welcomeFrame(name, h.online))
	h.broadcastLocked(event{Type: "join", Name: name})
	return c, nil
}

// validName accepts 1 to 32 letters (with the marks some scripts write
// them with, as in "हिन्दी"), digits, spaces and "-_." characters.
func validName(name string) error {
	n := utf8.RuneCountInString(name)
	if n == 0 || n > 32 || strings.TrimSpace(name) != name {
		return fmt.Errorf("a name has 1 to 32 characters, with no space at either end: /ws?name=NICK")
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsMark(r) && !unicode.IsDigit(r) && !strings.ContainsRune(" -_.", r) {
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
// once would put everyone more than the backlog behind and have them all
// dropped as too slow. The wait holds up only the sender: it reads nothing
// meanwhile, so what it sends waits in its own socket. Only the client's
// reading goroutine calls keepPace.
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

// broadcastLocked encodes the event once, as a complete frame, and adds it
// to the log, which wakes the writers that wait. It never waits. When the
// log reaches h.look, the hub looks for clients that have fallen too far
// behind (dropSlowLocked); the others then hear that they left. Those
// leaves are added in turn, from a list rather than by recursion, so each
// drop is logged and announced once, and the hub's lock is held for work in
// proportion to what happened: a look at every client at most once per
// eighth of a backlog said, not once per frame.
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
		h.said.add(frame)
		if h.said.end() > h.look {
			events = append(events, h.dropSlowLocked(int64(len(frame)))...)
		}
	}
	return size
}

// dropSlowLocked drops every client more than backlog bytes behind the
// log, unless all it has still to take is the newest frame (of newest
// bytes: a frame bigger than the backlog still goes to a client that has
// taken everything before it), or its writer has not yet run (a busy room
// may say a backlog's worth before a newcomer's goroutine gets a core,
// which is no slowness of the client's). The log then forgets what every
// client left has taken. The next look comes when the slowest of them could be
// more than backlog bytes behind, but not before another eighth of a
// backlog is said: so a client is dropped about an eighth of a backlog at
// most after it fell too far behind, and the room is looked over at most
// once per eighth of a backlog said. It returns the leaves to announce.
func (h *hub) dropSlowLocked(newest int64) (leaves []event) {
	end := h.said.end()
	keep := end
	for _, c := range h.clients {
		at := c.taken.Load()
		if at >= end-int64(h.backlog) || at >= end-newest || !c.started.Load() {
			keep = min(keep, at)
			continue
		}
		reason := fmt.Sprintf("too slow: fell over %d bytes behind", h.backlog)
		h.log.Info("chat client dropped", "name", c.name, "reason", "too slow")
		h.removeLocked(c, reason, true) // deleting during range is safe in Go
		leaves = append(leaves, event{Type: "leave", Name: c.name, Reason: reason})
	}
	h.said.forget(keep)
	h.look = max(keep+int64(h.backlog), end+int64(h.backlog)/8)
	return leaves
}

// welcomeFrame encodes the welcome, as textFrame would, but by hand: its
// list is the whole room, so that a burst of 2000 joins encodes two
// million names, and encoding/json takes several times longer over each
// than a copy. A name needs no escaping: validName lets in no quote,
// backslash or control character.
func welcomeFrame(name string, online []string) []byte {
	n := len(`{"type":"welcome","name":"","online":[]}`) + len(name)
	for _, o := range online {
		n += len(o) + 3
	}
	text := make([]byte, 0, n)
	text = append(text, `{"type":"welcome","name":"`...)
	text = append(text, name...)
	text = append(text, `","online":[`...)
	for i, o := range online {
		if i > 0 {
			text = append(text, ',')
		}
		text = append(text, '"')
		text = append(text, o...)
		text = append(text, '"')
	}
	text = append(text, "]}"...)
	return appendFrame(nil, true, opText, text)
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

// drop tells the client's writer to stop, the next time it looks: the
// leave the hub then says wakes it if it waits. A client dropped for being
// too slow has its closing handshake started at once: a write stuck on it
// gives up within CloseTimeout, and the writer then tries to send the close
// frame that says why.
func (c *client) drop(reason string, tooSlow bool) {
	c.mu.Lock()
	c.dropped, c.tooSlow, c.reason = true, tooSlow, reason
	c.mu.Unlock()
	if tooSlow {
		c.conn.setCloseDeadline()
	}
}

// writeLog is the client's writer: it sends the welcome, then everything
// the room says from the client's bookmark on, as much as there is in one
// system call, until the hub drops the client. A client dropped for being
// too slow gets a close frame that says so, if it reads at all.
func (c *client) writeLog(said *roomLog, welcome []byte) {
	pieces := [][]byte{welcome}
	for {
		v := said.view.Load()
		c.mu.Lock()
		dropped, tooSlow, reason := c.dropped, c.tooSlow, c.reason
		c.mu.Unlock()
		if dropped {
			// A dropped client gets nothing more, even if it is behind.
			if tooSlow {
				c.conn.Close(closePolicy, reason)
			}
			return
		}
		at := c.taken.Load()
		if at == v.end && len(pieces) == 0 {
			// Anything said from now on grows the log past this view, and
			// closes grown. A drop is always followed by a leave, said.
			<-v.grown
			continue
		}
		pieces = v.since(pieces, at)
		c.taken.Store(v.end)
		c.started.Store(true)
		err := c.conn.writePrepared(pieces)
		clear(pieces) // let the bytes go: the next write reuses the slice
		pieces = pieces[:0]
		if err != nil {
			return // the connection is closing; its reader tells the hub
		}
	}
}

// chunkSize is the size of the pieces the room's log is kept in.
const chunkSize = 16 << 10

// roomLog is what the room has said lately: its frames, end to end, as one
// stream of bytes kept in chunks. A place in the log is an offset into
// everything the room has ever said. Only the hub adds to it, under hub.mu;
// the writers read it with no lock, through the view published last. A
// view never changes: add writes the new bytes where no published view
// reaches yet, then publishes a longer view.
type roomLog struct {
	view atomic.Pointer[logView]
}

// logView is the log as it was at one moment: the bytes from start to end.
type logView struct {
	start, end int64         // start is a multiple of chunkSize
	chunks     [][]byte      // chunkSize bytes each; bytes from end on are not the view's
	grown      chan struct{} // closed when the log grows past end
}

func (l *roomLog) init() {
	l.view.Store(&logView{grown: make(chan struct{})})
}

// add appends a frame to the log and wakes the writers waiting for it.
func (l *roomLog) add(frame []byte) {
	v := l.view.Load()
	chunks, end := v.chunks, v.end
	for len(frame) > 0 {
		at := end % chunkSize
		if at == 0 { // the last chunk is full, or there is none
			chunks = append(chunks, make([]byte, chunkSize))
		}
		n := copy(chunks[len(chunks)-1][at:], frame)
		frame = frame[n:]
		end += int64(n)
	}
	l.view.Store(&logView{start: v.start, end: end, chunks: chunks, grown: make(chan struct{})})
	close(v.grown)
}

// end is the offset just past everything said so far.
func (l *roomLog) end() int64 {
	return l.view.Load().end
}

// forget lets the log drop the chunks wholly before offset keep. The new
// view ends where the old one did, and shares its grown.
func (l *roomLog) forget(keep int64) {
	v := l.view.Load()
	start := keep - keep%chunkSize
	l.view.Store(&logView{start: start, end: v.end, chunks: v.chunks[(start-v.start)/chunkSize:], grown: v.grown})
}

// since appends to pieces the view's bytes from offset at to its end, a
// piece per chunk.
func (v *logView) since(pieces [][]byte, at int64) [][]byte {
	for at < v.end {
		chunk := v.chunks[(at-v.start)/chunkSize]
		from := at % chunkSize
		to := min(chunkSize, from+v.end-at)
		pieces = append(pieces, chunk[from:to])
		at += to - from
	}
	return pieces
}
