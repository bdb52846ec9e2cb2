//go:build unix

package main

import "syscall"

// openFileLimit returns how many files this process may have open. Go
// raises the soft limit to the hard one when a program starts, so this is
// usually the hard limit.
func openFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<20 {
		return 1 << 20
	}
	return int(rl.Cur)
}
