package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Conn is one WebSocket connection, after the handshake.
//
// The goroutines that touch a Conn, and what each may do:
//
//   - The reading goroutine (Serve's, which hands each message to the
//     handler echoMessages or chatMessages in main.go gave it) calls
//     ReadMessage, which also answers pings and the peer's close frame. It
//     moves the read deadline (besides setCloseDeadline, from any
//     goroutine, and nudge, which only sets it in the past to wake it) and
//     notes when the peer was last heard, and it alone ends
//     the connection: closeGracefully after a closing handshake, closeNow
//     when the connection broke. While the peer is quiet, it ends, and the
//     poller, or a new goroutine, waits in its place (Serve).
//   - The server's sweep calls nudge; the poller (park_linux.go) reads
//     readBy, closeBy and closeSent of a connection it holds.
//   - Writers: the reading goroutine (the echo, pongs, the answer to a close
//     frame), the chat room's writer goroutine for this client
//     (writePrepared), the keepalive timer's goroutine (ping) and any
//     goroutine that calls Close. Every frame goes out through writeLocked
//     under writeMu, one at a time. A failed write closes the TCP
//     connection, so that the reader fails too and ends the connection.
//   - Any goroutine may start the closing handshake with Close: the reader
//     after a protocol error, the chat room for a client too slow to keep
//     up, the server's shutdown. From then on every read and write must be
//     done within CloseTimeout (setCloseDeadline): a write stuck on a peer
//     that does not read gives up then, and so does the reader waiting for
//     the peer's close frame.
type Conn struct {
	netConn net.Conn
	in      *reader // what arrives, buffered: frames reads from it
	frames  frameReader
	limits  *Limits
	memory  *messageMemory // shared by every connection: what message buffers may hold in all
	message []byte         // the message being read, reused from one message to the next (see Conn.room)

	writeMu   sync.Mutex   // held while a frame is written: one writer at a time
	writeBuf  []byte       // frames are encoded here, under writeMu
	pieces    net.Buffers  // what writeLocked is writing with writev, under writeMu
	closeSent atomic.Bool  // set under writeMu: after a close frame, nothing more may be sent
	closeBy   atomic.Int64 // when the closing handshake must be over, in Unix nanoseconds; 0 until it starts

	readBy  time.Time    // the read deadline last set, by the reading goroutine
	writeBy time.Time    // the write deadline last set, under writeMu
	heard   atomic.Int64 // when the last frame arrived, in Unix nanoseconds: the keepalive's clock
	pinger  *time.Timer

	handle      func(opcode byte, payload []byte) // what Serve does with each message
	end         func(err error)                   // and with how the connection ended
	readQuietly func()                            // c.waitQuietly, made once: see Serve
	state       atomic.Int32                      // where the reading goroutine is: reading, waiting, seen or nudged (see nudge)
	nudging     sync.Mutex                        // held while nudge sets the read deadline in the past
}

// Limits are the settings of every connection, with defaults in
// defaultLimits and a flag each in parseFlags.
type Limits struct {
	MaxMessage   int           // the largest message, in bytes, after reassembly
	WriteTimeout time.Duration // how long one frame may take to send
	PingInterval time.Duration // how often a quiet peer is pinged
	PongTimeout  time.Duration // how long after a ping the peer has to answer
	CloseTimeout time.Duration // how long to wait for the peer's close frame
}

var defaultLimits = Limits{
	MaxMessage:   16 << 20,
	WriteTimeout: 10 * time.Second,
	PingInterval: 30 * time.Second,
	PongTimeout:  10 * time.Second,
	CloseTimeout: 3 * time.Second,
}

func newConn(netConn net.Conn, buffered []byte, limits *Limits, memory *messageMemory) *Conn {
	in := newReader(netConn, buffered)
	c := &Conn{
		netConn: netConn,
		in:      in,
		frames:  frameReader{r: in, maxPayload: uint64(limits.MaxMessage)},
		limits:  limits,
		memory:  memory,
	}
	c.heard.Store(time.Now().UnixNano())
	c.pinger = time.AfterFunc(limits.PingInterval, c.ping)
	return c
}

// CloseError is how a connection ended: the status code and reason of the
// close frame the peer sent, or of the one we sent when we failed it.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("closed with %d %q", e.Code, e.Reason) }

// idleAfter is how often the server looks for connections whose reading
// goroutine waits for the peer's next message (see Conn.nudge): one that
// has waited since the last look gives its place to a goroutine with a
// smaller stack.
const idleAfter = 100 * time.Millisecond

// Serve reads messages in a goroutine of its own and calls handle with
// each, one at a time, until the connection ends; then it calls end with
// how it ended, as ReadMessage returned it. Serve returns at once.
//
// The goroutine that reads grows its stack to 4 KiB or more, handling a
// message, and would keep it while it waits for the next: most of what an
// idle connection costs. So when the peer has been quiet for a while (the
// server's sweep nudges it: see nudge), that goroutine ends, and the wait
// goes to the poller, which watches the socket with no goroutine at all
// (park_linux.go), or where there is none, to a new goroutine on the
// smallest stack (waitQuietly). Neither holds a buffer (reader.fill). When
// bytes come, a goroutine reads on in the old one's place. A busy
// connection keeps its goroutine: handing over the wait for every message
// would cost more than it saves.
func (c *Conn) Serve(handle func(opcode byte, payload []byte), end func(err error)) {
	c.handle, c.end = handle, end
	// A go statement on a func value with no arguments allocates nothing;
	// on a method, it would allocate each time.
	c.readQuietly = c.waitQuietly
	go c.read()
}

// Where the reading goroutine is, for nudge.
const (
	reading = iota // reading or handling a message
	waiting        // waiting for the next message
	seen           // waiting, and seen so by a sweep
	nudged         // woken by nudge, to give its place to a smaller goroutine
)

func (c *Conn) read() {
	for {
		if c.in.canAwait() && c.in.buffered() == 0 {
			quiet, err := c.quiet()
			if err != nil {
				c.end(c.failed(err))
				return
			}
			if quiet {
				if !park(c) {
					go c.readQuietly()
				}
				return
			}
		}
		opcode, payload, err := c.readMessage(true)
		if err != nil {
			c.end(err)
			return
		}
		if opcode != 0 { // 0: a ping or pong, and no message
			c.handle(opcode, payload)
		}
	}
}

// quiet waits for the peer's next bytes, and reports whether a nudge came
// first, so that the wait should go on without this goroutine, or the
// error if the read deadline passed. The last message's buffer goes back
// to the pool for the wait, unless it grew past the first step: a
// connection that gets big messages keeps its buffer.
func (c *Conn) quiet() (bool, error) {
	if cap(c.message) == firstStep {
		c.releaseMessage()
	}
	c.setReadDeadline()
	c.state.Store(waiting)
	err := c.in.fill()
	wasNudged := c.state.Swap(reading) == nudged
	if wasNudged {
		c.nudging.Lock() // nudge may not have set its deadline yet: let it finish
		c.nudging.Unlock()
		c.netConn.SetReadDeadline(c.readBy) // the keepalive's deadline again
		if c.closing() {
			c.setReadDeadline()
		}
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false, nil // bytes came, or the stream ended or failed: ReadMessage sees which
	}
	if wasNudged && time.Now().Before(c.readBy) {
		// Quiet for a while: let every buffer go, the ones a connection
		// keeps for its next message and frame too.
		c.releaseMessage()
		if c.writeMu.TryLock() {
			c.writeBuf = nil
			c.writeMu.Unlock()
		}
		return true, nil
	}
	return false, err // the read deadline passed
}

// nudge is called on every sweep of the server's connections. The first
// sweep that finds the reading goroutine waiting for a message marks it;
// the next, if it is still waiting, sets the read deadline in the past,
// which wakes it, to hand the wait over (see Serve). A reading goroutine
// that gets a message in between clears the mark.
func (c *Conn) nudge() {
	if c.state.CompareAndSwap(waiting, seen) {
		return
	}
	c.nudging.Lock()
	if c.state.CompareAndSwap(seen, nudged) {
		c.netConn.SetReadDeadline(time.Unix(1, 0))
	}
	c.nudging.Unlock()
}

// waitQuietly waits for the peer's next bytes, then reads on. If the read
// deadline passes first (the peer answered no ping, or the closing
// handshake's time is up), the connection ends, as it would in
// ReadMessage.
func (c *Conn) waitQuietly() {
	if err := c.in.fill(); err != nil {
		c.end(c.failed(err))
		return
	}
	c.read()
}

// ReadMessage returns the next text or binary message, reassembled from its
// fragments and, for text, checked to be UTF-8. The payload is valid until
// the next call. When the connection ends, the error is a *CloseError if a
// close handshake took place (either side may have started it), or the I/O
// error that ended it.
func (c *Conn) ReadMessage() (opcode byte, payload []byte, err error) {
	return c.readMessage(false)
}

// readMessage is ReadMessage. With betweenMessages, it also returns, with
// opcode 0, after a ping or pong that came between two messages when
// nothing more has arrived: Serve's goroutine then waits for the next
// message in quiet, where the sweep can find it, and not here.
func (c *Conn) readMessage(betweenMessages bool) (opcode byte, payload []byte, err error) {
	if cap(c.message) > keepMessageBuffer {
		c.releaseMessage() // let a rare huge message's memory go
	}
	c.message = c.message[:0]
	var text utf8Checker
	for {
		c.setReadDeadline()
		// The limit is on the whole message (RFC 6455 section 10.4): a
		// frame may only carry what is left of it.
		c.frames.maxPayload = uint64(c.limits.MaxMessage - len(c.message))
		f, err := c.frames.next()
		if err != nil {
			return 0, nil, c.failed(err)
		}
		c.heard.Store(time.Now().UnixNano()) // the peer is alive: no need to ping it soon

		switch f.opcode {
		case opPing:
			// Once our close frame is out, no pong may follow it: the ping
			// goes unanswered while we wait for the peer's close.
			if err := c.writeFrame(opPong, f.payload); err != nil && !c.closeSent.Load() {
				return 0, nil, c.failed(err)
			}
			if betweenMessages && opcode == 0 && c.in.buffered() == 0 {
				return 0, nil, nil
			}
			continue
		case opPong:
			// An answer to our ping, or unsolicited: either way, nothing
			// to do.
			if betweenMessages && opcode == 0 && c.in.buffered() == 0 {
				return 0, nil, nil
			}
			continue
		case opClose:
			return 0, nil, c.closeReceived(f.payload)
		case opContinuation:
			if opcode == 0 {
				return 0, nil, c.failed(fail(closeProtocolError, "continuation frame with no message to continue (RFC 6455 section 5.4)"))
			}
		default: // text or binary: the first frame of a message
			if opcode != 0 {
				return 0, nil, c.failed(fail(closeProtocolError, "new message started before the last one ended (RFC 6455 section 5.4)"))
			}
			opcode = f.opcode
		}
		if err := c.readPayload(opcode == opText, f.fin, &text); err != nil {
			return 0, nil, c.failed(err)
		}
		if f.fin {
			if c.closing() {
				// We are closing: a message that arrives now is dropped,
				// and we go on waiting for the peer's close frame.
				opcode, c.message = 0, c.message[:0]
				text = utf8Checker{}
				continue
			}
			return opcode, c.message, nil
		}
	}
}

// readPayload appends the payload of the data frame whose header was just
// read to the message, as it arrives: memory is set aside for bytes that
// have come, never for the length the header merely declares. A text
// message is checked at every step, so that invalid UTF-8 fails the
// connection at once, even in the middle of a long frame.
func (c *Conn) readPayload(isText, fin bool, text *utf8Checker) error {
	for c.frames.remaining > 0 {
		c.setReadDeadline()
		start := len(c.message)
		room, err := c.room(int(min(c.frames.remaining, uint64(c.limits.MaxMessage))))
		if err != nil {
			return err
		}
		n, err := c.frames.readPayload(room)
		c.message = c.message[:start+n]
		if err != nil {
			return err
		}
		if isText && !text.check(c.message, false) {
			return fail(closeInvalidData, "text message is not valid UTF-8 (RFC 6455 section 8.1)")
		}
	}
	if isText && fin && !text.check(c.message, true) { // no character may be left unfinished
		return fail(closeInvalidData, "text message is not valid UTF-8 (RFC 6455 section 8.1)")
	}
	return nil
}

// keepMessageBuffer is the largest message buffer a connection keeps for
// the next message: a connection that once got 16 MiB should not hold them
// while it idles. Only what a buffer holds beyond it is taken from the
// shared messageMemory, so idle connections cannot use that up.
const keepMessageBuffer = 1 << 20

// firstStep is the most a message buffer grows by before any of its bytes
// have arrived. A buffer of that size comes from, and goes back to, the
// pool that read buffers come from.
const firstStep = bufferSize

// room returns free space after the message for up to want more bytes.
// The buffer grows only when it is full, and then doubles (from firstStep,
// and never past MaxMessage), so its size follows the bytes that have
// arrived: a peer that declares 16 MiB and sends one byte costs us
// 4 KiB, and one that sends 3 MiB of it, 4 MiB. What it holds beyond
// keepMessageBuffer is taken from the memory all connections share; when
// that is used up, the message is refused with 1013 (try again later).
func (c *Conn) room(want int) ([]byte, error) {
	start := len(c.message)
	if start == cap(c.message) {
		size := min(max(2*start, firstStep), c.limits.MaxMessage)
		if !c.memory.take(beyondKeep(size) - beyondKeep(cap(c.message))) {
			return nil, fail(closeTryAgainLater, "the server has no memory left for messages just now: try again later")
		}
		var bigger []byte
		if size == firstStep {
			bigger = buffers.Get().(*[bufferSize]byte)[:start]
		} else {
			bigger = make([]byte, start, size)
		}
		copy(bigger, c.message)
		c.putBack()
		c.message = bigger
	}
	return c.message[start:min(cap(c.message), start+want)], nil
}

// releaseMessage lets the message buffer go, and gives its memory back.
func (c *Conn) releaseMessage() {
	c.memory.give(beyondKeep(cap(c.message)))
	c.putBack()
	c.message = nil
}

// putBack returns a first-step message buffer to the pool.
func (c *Conn) putBack() {
	if cap(c.message) == firstStep {
		buffers.Put((*[bufferSize]byte)(c.message[:firstStep]))
	}
}

// beyondKeep is what a buffer of size bytes takes from messageMemory.
func beyondKeep(size int) int { return max(size-keepMessageBuffer, 0) }

// setReadDeadline gives the next read until the peer must have shown it is
// alive (PingInterval + PongTimeout), or until the closing handshake must
// be over, whichever comes first.
//
// Moving a deadline updates a timer in the runtime, which costs about as
// much as the rest of a small message's reading: a deadline that would move
// by less than an eighth of its time stays where it is (the peer gets at
// most that much less time), so a busy connection moves it every few
// seconds, not every frame.
func (c *Conn) setReadDeadline() {
	wait := c.limits.PingInterval + c.limits.PongTimeout
	by := c.deadline(wait)
	// At most half the pong timeout, too: a peer pinged after PingInterval
	// of quiet keeps at least that long to answer.
	if !c.closing() && by.Sub(c.readBy) < min(wait/8, c.limits.PongTimeout/2) {
		return
	}
	c.readBy = by
	c.netConn.SetReadDeadline(by)
	if c.closing() {
		// Close may have run between the line above and this one, and
		// set its deadline first: set the earlier one again.
		c.readBy = c.deadline(c.limits.PingInterval + c.limits.PongTimeout)
		c.netConn.SetReadDeadline(c.readBy)
	}
}

// deadline returns the time an I/O that starts now and may take d must be
// done by: after d, or at the end of the closing handshake if sooner.
func (c *Conn) deadline(d time.Duration) time.Time {
	t := time.Now().Add(d)
	if by := c.closeBy.Load(); by != 0 && by < t.UnixNano() {
		return time.Unix(0, by)
	}
	return t
}

// closing reports whether the closing handshake has started.
func (c *Conn) closing() bool { return c.closeBy.Load() != 0 }

// closeReceived answers the peer's close frame and ends the connection
// (RFC 6455 section 5.5.1). A close payload is empty, or a 2-byte status
// code followed by a UTF-8 reason.
func (c *Conn) closeReceived(payload []byte) error {
	code, reason := 1005, "" // 1005: the peer sent no status code (RFC 6455 section 7.1.5)
	switch {
	case len(payload) == 1:
		return c.failed(fail(closeProtocolError, "close frame with a 1-byte payload (RFC 6455 section 5.5.1)"))
	case len(payload) >= 2:
		code, reason = int(payload[0])<<8|int(payload[1]), string(payload[2:])
		if !validCloseCode(code) {
			return c.failed(fail(closeProtocolError, "close code %d may not be sent (RFC 6455 section 7.4)", code))
		}
		if !utf8.ValidString(reason) {
			return c.failed(fail(closeInvalidData, "close reason is not valid UTF-8 (RFC 6455 section 5.5.1)"))
		}
	}
	// Echo the status code, as section 5.5.1 suggests, then close the TCP
	// connection: the server closes it first (section 7.1.1).
	c.setCloseDeadline()
	c.writeFrame(opClose, payload[:min(len(payload), 2)])
	c.closeGracefully()
	return &CloseError{Code: code, Reason: reason}
}

// failed ends the connection after a read error. A protocol error is
// answered with a close frame carrying its code (RFC 6455 section 7.1.7);
// an I/O error (the peer vanished, or a deadline passed) just closes.
func (c *Conn) failed(err error) error {
	var pe *protocolError
	if errors.As(err, &pe) {
		c.Close(pe.code, pe.reason)
		c.closeGracefully()
		return &CloseError{Code: pe.code, Reason: pe.reason}
	}
	c.closeNow()
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF // gone without a close frame (status 1006)
	}
	return err
}

// WriteMessage sends a text or binary message as one frame. It is safe to
// call from several goroutines at once.
func (c *Conn) WriteMessage(opcode byte, payload []byte) error {
	return c.writeFrame(opcode, payload)
}

// writeFrame encodes and writes one frame. Small frames are encoded into
// one buffer and written with one system call; a large payload is written
// from where it lies, after its header.
func (c *Conn) writeFrame(opcode byte, payload []byte) error {
	if len(payload) <= 64<<10 {
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		c.writeBuf = appendFrame(c.writeBuf[:0], true, opcode, payload)
		return c.writeLocked(opcode == opClose, c.writeBuf, nil)
	}
	var h [10]byte
	n := frameHeader(&h, true, opcode, len(payload))
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.writeLocked(opcode == opClose, nil, [][]byte{h[:n], payload})
}

// writePrepared sends frames encoded once for many connections (the chat
// hub's broadcasts), as many as are waiting, in one system call.
func (c *Conn) writePrepared(frames [][]byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if len(frames) == 1 {
		return c.writeLocked(false, frames[0], nil)
	}
	return c.writeLocked(false, nil, frames)
}

// writeLocked is the only place that writes to the connection; writeMu is
// held. It writes frame, or else the pieces, in one system call (writev)
// from where they lie. A failed write closes the TCP connection: part of a
// frame may have gone out, so nothing sent after it could be read right.
// The reader then fails too, and the connection ends.
func (c *Conn) writeLocked(isClose bool, frame []byte, pieces [][]byte) error {
	if c.closeSent.Load() {
		return net.ErrClosed
	}
	if isClose {
		c.closeSent.Store(true)
	}
	// As in setReadDeadline: a deadline is moved only by more than an
	// eighth of its time, and again if setCloseDeadline may have just run.
	if by := c.deadline(c.limits.WriteTimeout); c.closing() || by.Sub(c.writeBy) >= c.limits.WriteTimeout/8 {
		c.writeBy = by
		c.netConn.SetWriteDeadline(by)
		if c.closing() {
			c.writeBy = c.deadline(c.limits.WriteTimeout)
			c.netConn.SetWriteDeadline(c.writeBy)
		}
	}
	var err error
	if pieces == nil {
		_, err = c.netConn.Write(frame)
	} else {
		// WriteTo takes its pieces off c.pieces as they go out; the field,
		// unlike a local variable, costs no allocation per write.
		c.pieces = pieces
		_, err = c.pieces.WriteTo(c.netConn)
		c.pieces = nil
	}
	if err != nil {
		c.closeSent.Store(true)
		c.netConn.Close()
	}
	return err
}

// ping runs on the keepalive timer when the peer may have been quiet for
// PingInterval. The reader's deadline drops the peer if nothing, pong or
// other, arrives within PongTimeout after it.
func (c *Conn) ping() {
	if c.closeSent.Load() {
		return // the connection is closing, or gone: no more pings
	}
	// The reader notes when each frame arrives rather than resetting the
	// timer, which would cost a timer update per frame: the timer looks
	// at that time when it fires, and waits on if the peer spoke since.
	if quiet := time.Since(time.Unix(0, c.heard.Load())); quiet < c.limits.PingInterval {
		c.pinger.Reset(c.limits.PingInterval - quiet)
		return
	}
	if c.writeFrame(opPing, nil) == nil {
		c.pinger.Reset(c.limits.PingInterval)
	}
}

// Close starts the closing handshake: it sends a close frame with code and
// reason (at most 123 bytes of it, so the frame stays a control frame) and
// gives the peer CloseTimeout to answer. The reading goroutine sees the
// answer, or the deadline, and closes the connection. Close is safe to call
// from any goroutine, and more than once: only the first close frame is
// sent. It waits at most CloseTimeout: a peer that does not read cannot
// take the close frame, and is cut off when that time is up.
func (c *Conn) Close(code int, reason string) error {
	if len(reason) > 123 {
		// Cut at a character boundary: the reason must stay UTF-8.
		cut := 123
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	payload := make([]byte, 2, 2+len(reason))
	payload[0], payload[1] = byte(code>>8), byte(code)
	payload = append(payload, reason...)
	c.setCloseDeadline()
	return c.writeFrame(opClose, payload)
}

// setCloseDeadline sets the time by which the connection must be over:
// CloseTimeout from the first call. It never blocks, so that any goroutine
// may call it, even while a write is stuck: that write, and the reader,
// give up at that time.
func (c *Conn) setCloseDeadline() {
	by := time.Now().Add(c.limits.CloseTimeout)
	if c.closeBy.CompareAndSwap(0, by.UnixNano()) {
		c.netConn.SetWriteDeadline(by)
		c.netConn.SetReadDeadline(by)
	}
}

// closeGracefully closes the TCP connection: our side first (a FIN, so
// that the close frame we just sent cannot be lost to a reset), then it
// discards what the peer still sends until the peer closes too, at most
// 1 MiB of it, until the closing handshake's time is up.
func (c *Conn) closeGracefully() {
	c.setCloseDeadline()
	if tcp, ok := c.netConn.(interface{ CloseWrite() error }); ok {
		tcp.CloseWrite()
	}
	c.netConn.SetReadDeadline(c.deadline(c.limits.CloseTimeout))
	io.Copy(io.Discard, io.LimitReader(c.in, 1<<20))
	c.closeNow()
}

// closeNow closes the TCP connection at once, stops the keepalive timer
// and gives back the message buffer's memory. Like closeGracefully, only
// the reading goroutine calls it, or the code that would have started one.
func (c *Conn) closeNow() {
	c.pinger.Stop()
	c.netConn.Close()
	c.releaseMessage()
}
