//go:build unix

package main

import (
	"os"
	"syscall"
)

// canReadNow says that readNow works here.
const canReadNow = true

// readNow reads what has arrived on the socket fd into p, without waiting:
// arrived is false if nothing has. The socket is non-blocking, as the Go
// runtime keeps every socket.
func readNow(fd uintptr, p []byte) (n int, err error, arrived bool) {
	for {
		n, err = syscall.Read(int(fd), p)
		if err != syscall.EINTR {
			break
		}
	}
	if err == syscall.EAGAIN {
		return 0, nil, false
	}
	if err != nil {
		return 0, os.NewSyscallError("read", err), true
	}
	return n, nil, true
}
