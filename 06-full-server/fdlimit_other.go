//go:build !unix

package main

// openFileLimit is a guess where there is no RLIMIT_NOFILE to read:
// Windows has no small per-process limit on sockets.
func openFileLimit() int { return 1 << 14 }
