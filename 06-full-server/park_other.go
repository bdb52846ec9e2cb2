//go:build !linux

package main

// park hands c's wait to a poller where there is one (park_linux.go); here
// there is none, and the connection waits in a goroutine of its own.
func park(c *Conn) bool { return false }
