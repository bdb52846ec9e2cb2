//go:build !unix

package main

// canReadNow says that readNow does not work here: a connection waits in
// Read, holding its buffer.
const canReadNow = false

func readNow(fd uintptr, p []byte) (n int, err error, arrived bool) { panic("unreachable") }
