package main

import (
	"io"
	"net"
	"sync"
	"syscall"
)

// bufferSize is the size of a read buffer, and of a message buffer's first
// step (see Conn.room).
const bufferSize = 4 << 10

// buffers holds the 4 KiB arrays that connections read into, shared by all
// of them: a connection takes one when bytes arrive and gives it back when
// it has used them, so that ten thousand idle connections hold none.
var buffers = sync.Pool{New: func() any { return new([bufferSize]byte) }}

// reader is a connection's buffered reader, like a bufio.Reader, except
// that it holds a buffer only while it holds bytes. An idle connection
// waits for its peer's next frame with no buffer at all: where the
// connection lets us (syscall.RawConn), the runtime waits for the socket
// while the reader holds nothing, and calls readFromFD, which takes a
// buffer, reads, and gives the buffer back if nothing had arrived.
type reader struct {
	conn net.Conn
	raw  syscall.RawConn // nil where the connection has none: then it waits in Read, holding a buffer
	buf  *[bufferSize]byte
	r, w int // buf[r:w] has been read from the connection but not yet used

	tryRead func(fd uintptr) bool // rd.readFromFD, made once: a method value made per call would allocate
	n       int                   // what tryRead read
	err     error
	failed  error // the error that ended the connection: every Read after it returns it again
}

// newReader reads from conn, starting with the bytes net/http had already
// read past the handshake.
func newReader(conn net.Conn, buffered []byte) *reader {
	rd := &reader{conn: conn}
	if sc, ok := conn.(syscall.Conn); ok && canReadNow {
		rd.raw, _ = sc.SyscallConn()
	}
	rd.tryRead = rd.readFromFD
	if len(buffered) > 0 {
		rd.take()
		rd.w = copy(rd.buf[:], buffered) // net/http's buffer is 4 KiB too
	}
	return rd
}

// Read reads into p what is buffered, or else what arrives next. A read of
// a buffer's size or more, with nothing buffered, goes straight into p.
func (rd *reader) Read(p []byte) (int, error) {
	if rd.failed != nil {
		return 0, rd.failed
	}
	if rd.r == rd.w {
		if len(p) >= bufferSize {
			return rd.conn.Read(p)
		}
		if err := rd.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, rd.buf[rd.r:rd.w])
	rd.r += n
	if rd.r == rd.w {
		rd.release()
	}
	return n, nil
}

// fill waits for bytes and reads what has arrived into a buffer.
func (rd *reader) fill() error {
	if rd.raw == nil {
		rd.take()
		n, err := rd.conn.Read(rd.buf[:])
		rd.r, rd.w = 0, n
		if n == 0 {
			rd.release()
		}
		return err
	}
	// RawConn.Read calls tryRead, and while it reports that nothing has
	// arrived, waits until something has (or the read deadline passes, or
	// the connection is closed) and calls it again.
	if err := rd.raw.Read(rd.tryRead); err != nil {
		return asRead(err) // a deadline, or the connection closed: not kept, as a deadline can move
	}
	return rd.arrived()
}

// arrived takes in what tryRead read.
func (rd *reader) arrived() error {
	n, err := rd.n, rd.err
	rd.n, rd.err = 0, nil
	if err != nil || n == 0 {
		rd.release()
		if err == nil {
			return io.EOF
		}
		// Kept: a reset is reported once, and the socket then reads as
		// if it had ended normally.
		rd.failed = &net.OpError{Op: "read", Net: "tcp", Source: rd.conn.LocalAddr(), Addr: rd.conn.RemoteAddr(), Err: err}
		return rd.failed
	}
	rd.r, rd.w = 0, n
	return nil
}

// buffered is how many bytes the reader holds.
func (rd *reader) buffered() int { return rd.w - rd.r }

// canAwait reports whether fill waits for bytes without holding a buffer
// (through RawConn), as Conn.Serve's waiting goroutine should.
func (rd *reader) canAwait() bool { return rd.raw != nil }

// asRead makes an error of RawConn.Read say "read", as net.Conn's Read
// does, not "raw-read".
func asRead(err error) error {
	if op, ok := err.(*net.OpError); ok {
		op.Op = "read"
	}
	return err
}

// readFromFD reads what has arrived into a buffer, taken for the purpose,
// and reports false if nothing has: the buffer goes back, and the runtime
// waits for bytes.
func (rd *reader) readFromFD(fd uintptr) bool {
	rd.take()
	n, err, arrived := readNow(fd, rd.buf[:])
	if !arrived {
		rd.release()
		return false
	}
	rd.n, rd.err = n, err
	return true
}

func (rd *reader) take() {
	if rd.buf == nil {
		rd.buf = buffers.Get().(*[bufferSize]byte)
	}
}

func (rd *reader) release() {
	if rd.buf != nil {
		buffers.Put(rd.buf)
		rd.buf = nil
	}
	rd.r, rd.w = 0, 0
}
