package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Conn is one WebSocket connection, after the handshake.
//
// Its concurrency contract, which the code enforces: one goroutine reads
// (ReadMessage), and any number of goroutines may write (WriteMessage,
// Close) at the same time, because every frame goes out under one mutex.
// Control frames are handled while reading: a ping is answered with a pong,
// a close with a close. A peer that goes quiet is pinged every
// PingInterval, and dropped when nothing arrives for PingInterval +
// PongTimeout.
type Conn struct {
	netConn net.Conn
	frames  frameReader
	limits  *Limits
	message []byte // the message being read, reused from one message to the next

	writeMu   sync.Mutex  // held while a frame is written: one writer at a time
	writeBuf  []byte      // frames are encoded here, under writeMu
	closeSent atomic.Bool // set under writeMu: after a close frame, nothing more may be sent

	pinger *time.Timer
}

// Limits are the settings of every connection, with defaults in
// defaultLimits and a flag each in main.
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

func newConn(netConn net.Conn, br *bufio.Reader, limits *Limits) *Conn {
	c := &Conn{
		netConn: netConn,
		frames:  frameReader{r: br, maxPayload: uint64(limits.MaxMessage)},
		limits:  limits,
	}
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

// ReadMessage returns the next text or binary message, reassembled from its
// fragments and, for text, checked to be UTF-8. The payload is valid until
// the next call. When the connection ends, the error is a *CloseError if a
// close handshake took place (either side may have started it), or the I/O
// error that ended it.
func (c *Conn) ReadMessage() (opcode byte, payload []byte, err error) {
	if cap(c.message) > keepMessageBuffer {
		c.message = nil // let a rare huge message's memory go
	}
	c.message = c.message[:0]
	var utf8 utf8Checker
	for {
		if !c.closeSent.Load() { // once closing, Close has set the last deadline
			c.netConn.SetReadDeadline(time.Now().Add(c.limits.PingInterval + c.limits.PongTimeout))
		}
		// The limit is on the whole message (RFC 6455 section 10.4): a
		// frame may only carry what is left of it.
		c.frames.maxPayload = uint64(c.limits.MaxMessage - len(c.message))
		f, err := c.frames.next(c.grow)
		if err != nil {
			return 0, nil, c.failed(err)
		}
		c.pinger.Reset(c.limits.PingInterval) // the peer is alive: no need to ping it soon

		switch f.opcode {
		case opPing:
			// Once our close frame is out, no pong may follow it: the ping
			// goes unanswered while we wait for the peer's close.
			if err := c.writeFrame(opPong, f.payload); err != nil && !c.closeSent.Load() {
				return 0, nil, c.failed(err)
			}
			continue
		case opPong:
			continue // an answer to our ping, or unsolicited: either way, nothing to do
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
		if opcode == opText && !utf8.check(c.message, f.fin) {
			return 0, nil, c.failed(fail(closeInvalidData, "text message is not valid UTF-8 (RFC 6455 section 8.1)"))
		}
		if f.fin {
			if c.closeSent.Load() {
				// We are closing: a message that arrives now is dropped,
				// and we go on waiting for the peer's close frame.
				opcode, c.message = 0, c.message[:0]
				utf8 = utf8Checker{}
				continue
			}
			return opcode, c.message, nil
		}
	}
}

// keepMessageBuffer is the largest message buffer a connection keeps for
// the next message: a connection that once got 16 MiB should not hold them.
const keepMessageBuffer = 1 << 20

// grow makes room for n more bytes of the current message and returns
// them. The frame reader has checked n against what is left of MaxMessage.
func (c *Conn) grow(n int) []byte {
	start := len(c.message)
	if start+n > cap(c.message) {
		// Double, to make growing by many fragments cheap, but never past
		// the limit.
		bigger := make([]byte, start, min(max(start+n, 2*cap(c.message)), c.limits.MaxMessage))
		copy(bigger, c.message)
		c.message = bigger
	}
	c.message = c.message[:start+n]
	return c.message[start:]
}

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
	c.writeFrame(opClose, payload[:min(len(payload), 2)])
	c.finish()
	return &CloseError{Code: code, Reason: reason}
}

// failed ends the connection after a read error. A protocol error is
// answered with a close frame carrying its code (RFC 6455 section 7.1.7);
// an I/O error (the peer vanished, or a deadline passed) just closes.
func (c *Conn) failed(err error) error {
	var pe *protocolError
	if errors.As(err, &pe) {
		c.Close(pe.code, pe.reason)
		c.finish()
		return &CloseError{Code: pe.code, Reason: pe.reason}
	}
	c.shutdown()
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

// writeFrame is the only place that writes to the connection. Small frames
// are encoded into one buffer and written with one system call; a large
// payload is written from where it lies, after its header.
func (c *Conn) writeFrame(opcode byte, payload []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.closeSent.Load() {
		return net.ErrClosed
	}
	if opcode == opClose {
		c.closeSent.Store(true)
	}
	c.netConn.SetWriteDeadline(time.Now().Add(c.limits.WriteTimeout))
	var err error
	if len(payload) <= 64<<10 {
		c.writeBuf = appendFrame(c.writeBuf[:0], true, opcode, payload)
		_, err = c.netConn.Write(c.writeBuf)
	} else {
		var h [10]byte
		n := frameHeader(&h, true, opcode, len(payload))
		bufs := net.Buffers{h[:n], payload}
		_, err = bufs.WriteTo(c.netConn)
	}
	return c.writeFailed(err)
}

// writeFailed closes the connection after a failed write: part of a frame
// may have gone out, so nothing sent after it could be read right. The
// reader then fails too, and the connection ends.
func (c *Conn) writeFailed(err error) error {
	if err != nil {
		c.closeSent.Store(true)
		c.netConn.Close()
	}
	return err
}

// writePrepared sends a frame encoded once for many connections (the chat
// hub's broadcasts).
func (c *Conn) writePrepared(frame []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.closeSent.Load() {
		return net.ErrClosed
	}
	c.netConn.SetWriteDeadline(time.Now().Add(c.limits.WriteTimeout))
	_, err := c.netConn.Write(frame)
	return c.writeFailed(err)
}

// ping runs on its own timer when the peer has been quiet for PingInterval.
// The read deadline set in ReadMessage drops the peer if no frame, pong or
// other, arrives within PongTimeout after it.
func (c *Conn) ping() {
	if c.writeFrame(opPing, nil) == nil {
		c.pinger.Reset(c.limits.PingInterval)
	}
}

// Close starts the closing handshake: it sends a close frame with code and
// reason (at most 123 bytes of it, so the frame stays a control frame) and
// gives the peer CloseTimeout to answer. The reading goroutine sees the
// answer, or the deadline, and closes the connection. Close is safe to call
// from any goroutine, and more than once: only the first close frame is sent.
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
	err := c.writeFrame(opClose, payload)
	c.netConn.SetReadDeadline(time.Now().Add(c.limits.CloseTimeout))
	return err
}

// finish closes the TCP connection gracefully: our side first (a FIN, so
// that the close frame we just sent cannot be lost to a reset), then it
// discards what the peer still sends until the peer closes too, at most
// 1 MiB or CloseTimeout of it.
func (c *Conn) finish() {
	if tcp, ok := c.netConn.(interface{ CloseWrite() error }); ok {
		tcp.CloseWrite()
	}
	c.netConn.SetReadDeadline(time.Now().Add(c.limits.CloseTimeout))
	io.Copy(io.Discard, io.LimitReader(c.frames.r, 1<<20))
	c.shutdown()
}

// shutdown closes the TCP connection and stops the pinger.
func (c *Conn) shutdown() {
	c.pinger.Stop()
	c.netConn.Close()
}
