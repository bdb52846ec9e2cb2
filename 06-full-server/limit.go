package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// limitListener caps the connections open at once. Each one costs a file
// descriptor, and a process that runs out of them cannot accept anyone:
// net/http then retries Accept in a loop while clients wait in the kernel's
// queue until they give up. Past the cap, a client is told at once, with
// 503 Service Unavailable and when to try again, before the handshake.
type limitListener struct {
	net.Listener
	max      int64
	log      *slog.Logger
	open     atomic.Int64 // connections accepted and not yet closed
	refusal  atomic.Int64 // refusals being written now
	refused  atomic.Int64 // refusals not yet logged
	logged   atomic.Int64 // when refusals were last logged, in Unix nanoseconds
	flushing atomic.Bool  // a line of refusals is scheduled
}

// maxRefusing bounds the refusals in progress: each holds a descriptor
// for up to a quarter second, and a flood past the cap must not exhaust
// them.
// Beyond it, a connection is closed without a word.
const maxRefusing = 64

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &countedConn{Conn: conn, open: &l.open}, nil
		}
		l.open.Add(-1)
		l.logRefusal()
		if l.refusal.Add(1) > maxRefusing {
			l.refusal.Add(-1)
			conn.Close()
			continue
		}
		go func() {
			defer l.refusal.Add(-1)
			refuse(conn)
		}()
	}
}

// logRefusal logs refusals at most once a second, with how many there
// were since the last line: a flood of connections must not become a
// flood of log lines. The line comes a second after the last one at the
// latest, so the end of a flood is counted too.
func (l *limitListener) logRefusal() {
	l.refused.Add(1)
	if !l.flushing.CompareAndSwap(false, true) {
		return // a line that counts this refusal is already on its way
	}
	wait := time.Duration(l.logged.Load() + int64(time.Second) - time.Now().UnixNano())
	time.AfterFunc(max(wait, 0), l.flushRefusals)
}

// flushRefusals writes the line logRefusal scheduled.
func (l *limitListener) flushRefusals() {
	l.flushing.Store(false)
	l.logged.Store(time.Now().UnixNano())
	if n := l.refused.Swap(0); n > 0 {
		l.log.Warn("connections refused", "count", n, "reason", "at -max-conns", "max", l.max)
	}
}

// refuse answers 503 without reading the request, then closes so that the
// answer arrives: our side first, then the client's unread request is
// drained for a moment. Closing with unread input would make the kernel
// send a reset, which can destroy the answer before the client reads it.
func refuse(conn net.Conn) {
	const body = "too many connections: try again in a few seconds\n"
	conn.SetDeadline(time.Now().Add(250 * time.Millisecond))
	fmt.Fprintf(conn, "HTTP/1.1 503 Service Unavailable\r\n"+
		"Retry-After: 5\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n"+
		"Content-Length: %d\r\n"+
		"Connection: close\r\n\r\n%s", len(body), body)
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(conn, 64<<10))
	conn.Close()
}

// countedConn gives its place back when it is closed, once, however many
// times Close is called (net/http and Conn may both close it).
type countedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// SyscallConn lets Conn's reader wait for bytes without a buffer (see reader).
func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// CloseWrite lets Conn.closeGracefully half-close the TCP connection underneath.
func (c *countedConn) CloseWrite() error {
	if tcp, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return tcp.CloseWrite()
	}
	return nil
}

// SetWriteBuffer lets the chat cap its clients' send buffers
// (chatSendBuffer).
func (c *countedConn) SetWriteBuffer(bytes int) error {
	if tcp, ok := c.Conn.(interface{ SetWriteBuffer(int) error }); ok {
		return tcp.SetWriteBuffer(bytes)
	}
	return nil
}

// defaultMaxConns stays below the process's limit on open files, keeping
// a tenth of it (and at least 128) for everything else: the listener, the
// refusals in progress, logs, and what net/http opens.
func defaultMaxConns() int {
	files := openFileLimit()
	return max(files-max(files/10, 128), 1)
}

// messageMemory bounds the memory that all connections together hold for
// the messages they are reading. MaxMessage keeps one peer from taking
// much; this keeps many peers, each sending most of a large message and
// then stalling, from taking it all: 1,100 of them holding 15 MiB each
// would need 16 GiB.
type messageMemory struct {
	max  int64
	used atomic.Int64
}

// take sets n bytes aside, if they fit under max.
func (m *messageMemory) take(n int) bool {
	if m.used.Add(int64(n)) > m.max {
		m.used.Add(-int64(n))
		return false
	}
	return true
}

// give returns n bytes that take set aside.
func (m *messageMemory) give(n int) { m.used.Add(-int64(n)) }
