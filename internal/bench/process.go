package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one server under test, running in a child process.
type server struct {
	name string
	cmd  *exec.Cmd
	addr string // host:port it listens on
}

// listenRE finds the address in the line a server prints when it is ready:
// "chapter 06 listening: open http://127.0.0.1:PORT/ ...".
var listenRE = regexp.MustCompile(`listening: open http://([0-9.]+:[0-9]+)/`)

// build compiles chapter 06 from the repository at root into dir, as the
// reader would run it. It is a program (package main), so it is measured
// as one: a process of its own, like the other two.
func build06(root, dir string) (string, error) {
	bin := filepath.Join(dir, "ws06")
	cmd := exec.Command("go", "build", "-o", bin, "./06-full-server")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./06-full-server: %v\n%s", err, out)
	}
	return bin, nil
}

// build06At builds chapter 06 as it was at the git revision rev, from a
// copy of the repository checked out into dir.
func build06At(root, rev, dir string) (string, error) {
	for _, args := range [][]string{{"clone", "--quiet", "--no-checkout", root, dir}, {"-C", dir, "checkout", "--quiet", rev}} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return build06(dir, dir)
}

// startServer starts the named server: a build of chapter 06 (bins holds
// them by name), this program again in its gorilla or gws role, or
// node/server.js. It returns once the server has printed
// the address it listens on; the rest of its output (chapter 06 logs every
// connection) is read and dropped, so that the child never blocks on a
// full pipe.
func startServer(name string, bins map[string]string) (*server, error) {
	var cmd *exec.Cmd
	if name == "node-ws" {
		var err error
		if cmd, err = nodeCommand(); err != nil {
			return nil, err
		}
	} else if bin06, ok := bins[name]; ok {
		// Keepalive pings every 10 minutes: none during a run, as the other
		// two send none.
		cmd = exec.Command(bin06, "-addr", "127.0.0.1:0", "-ping-interval", "10m", "-chat-rate", "1073741824")
	} else {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(self)
		cmd.Env = append(os.Environ(), serveEnv+"="+name)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no server outlives an interrupted run
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: name, cmd: cmd}
	ready := make(chan string, 1)
	go func() {
		lines := bufio.NewReader(out)
		for {
			line, err := lines.ReadString('\n')
			if m := listenRE.FindStringSubmatch(line); m != nil {
				ready <- m[1]
				break
			}
			if err != nil {
				close(ready)
				return
			}
		}
		io.Copy(io.Discard, lines)
	}()
	select {
	case addr, ok := <-ready:
		if !ok {
			s.stop()
			return nil, fmt.Errorf("%s exited before it listened", name)
		}
		s.addr = addr
		return s, nil
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, fmt.Errorf("%s printed no address in 30 s", name)
	}
}

// stop kills the server's process and waits for it.
func (s *server) stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// rss returns the resident memory of the server's process, in bytes, from
// the VmRSS line of /proc/PID/status.
func (s *server) rss() (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// cpu returns the CPU time the server's process has used so far, user and
// system together, from /proc/PID/stat (in clock ticks of 10 ms).
func (s *server) cpu() (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// from the closing one. utime and stime are fields 14 and 15.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// raiseFileLimit lifts this process's limit on open files to the hard
// limit; the servers it starts inherit it. 10,000 idle connections take
// 10,000 descriptors on each side.
func raiseFileLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur < need {
		return fmt.Errorf("open files limited to %d, %d needed: raise the hard limit (ulimit -Hn)", lim.Cur, need)
	}
	return nil
}

// nodeCommand is the command that runs node/server.js, next to this
// program's source. The first time, it installs the ws package there with
// npm ci, at the version package-lock.json fixes.
func nodeCommand() (*exec.Cmd, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return nil, errors.New("node-ws: no node here: install Node.js and npm, or leave it out with -servers 06,gorilla,gws")
	}
	_, src, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(src), "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws", "package.json")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("node-ws: npm ci in %s: %v\n%s", dir, err, out)
		}
	}
	cmd := exec.Command("node", "server.js")
	cmd.Dir = dir
	return cmd, nil
}
