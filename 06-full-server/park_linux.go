package main

import (
	"sync"
	"syscall"
	"time"
)

// On Linux, a quiet connection waits with no goroutine at all: the poller
// watches its socket with epoll, alongside every other quiet connection's,
// and starts a goroutine for it when something arrives, or when its
// deadline has passed. An idle connection then costs its socket, its Conn
// and an entry in a map, and no stack (see Conn.Serve).
//
// Go's runtime watches every socket with an epoll of its own; a socket may
// be in two epolls, and this one asks to hear of it once (EPOLLONESHOT).
type poller struct {
	epfd     int
	mu       sync.Mutex
	parked   map[int32]*Conn // by socket descriptor
	lastScan time.Time
}

var (
	idlePoller *poller // nil if epoll could not be set up: connections then wait in a goroutine
	pollerOnce sync.Once
)

// park hands c's wait to the poller, and reports whether it took it.
func park(c *Conn) bool {
	pollerOnce.Do(func() {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		idlePoller = &poller{epfd: epfd, parked: map[int32]*Conn{}}
		go idlePoller.run()
	})
	return idlePoller != nil && idlePoller.park(c)
}

func (p *poller) park(c *Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	took := false
	// Control runs with the socket held open: its descriptor cannot be
	// closed, and given to another socket, while it is added.
	c.in.raw.Control(func(fd uintptr) {
		if old := p.parked[int32(fd)]; old != nil {
			// The socket of a parked connection was closed (a write to
			// it failed), and its number given to this one: wake the
			// old connection, so that it ends.
			delete(p.parked, int32(fd))
			go old.readQuietly()
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
		if syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) == nil {
			p.parked[int32(fd)] = c
			took = true
		}
	})
	return took
}

// run waits for parked sockets to have something to read, and starts a
// goroutine for each connection that does. Every idleAfter, it also wakes
// the connections whose time is up: a read deadline passed (the peer did
// not answer a ping, or a closing handshake took too long), or a failed
// write closed the socket. Their goroutine finds out which, and ends them.
func (p *poller) run() {
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(p.epfd, events, int(idleAfter/time.Millisecond))
		if err != nil && err != syscall.EINTR {
			panic("epoll_wait: " + err.Error())
		}
		p.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			if c := p.parked[ev.Fd]; c != nil {
				p.wakeLocked(ev.Fd, c)
			}
		}
		if now := time.Now(); now.Sub(p.lastScan) >= idleAfter {
			p.lastScan = now
			for fd, c := range p.parked {
				if c.closeSent.Load() || !now.Before(c.readBy) || c.closing() && now.UnixNano() >= c.closeBy.Load() {
					p.wakeLocked(fd, c)
				}
			}
		}
		p.mu.Unlock()
	}
}

func (p *poller) wakeLocked(fd int32, c *Conn) {
	delete(p.parked, fd)
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	go c.readQuietly() // waitQuietly, started without an allocation (see Serve)
}
