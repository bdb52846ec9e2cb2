// Package booktest is the test support every chapter shares: it starts a
// chapter's server on a free port, captures what the server prints, builds
// the requests and frames the tests send, drives a headless Chromium, and
// keeps the transcripts and screenshots in docs/ true.
//
// It is scaffolding, not part of the lesson: only _test.go files import it,
// so every chapter's program stays complete on its own.
package booktest

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Update makes the tests rewrite what they check in docs/ (transcripts,
// quotes, screenshots) instead of failing when it differs:
//
//	go test ./... -update
var Update = flag.Bool("update", false, "rewrite transcripts, quotes and screenshots in docs/ from this run")

// Output collects what a chapter's server prints. Connections are served by
// many goroutines at once, so every method is safe for concurrent use.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns everything printed so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// WaitFor waits until the output contains want and returns the output.
// It fails the test if that takes longer than ten seconds.
func (o *Output) WaitFor(t testing.TB, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := o.String()
		if strings.Contains(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("server never printed %q; it printed:\n%s", want, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitForCount waits until the output contains want n times or more. It
// fails the test if that takes longer than a minute: it waits for many
// connections, each of which may move megabytes, under -race too.
func (o *Output) WaitForCount(t testing.TB, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for strings.Count(o.String(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the server printed %q fewer than %d times; it printed:\n%s", want, n, o.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ServeFunc is the shape of every chapter's accept loop: serve connections
// from ln until it is closed, printing to out.
type ServeFunc func(ln net.Listener, out io.Writer) error

// Serve runs a chapter's accept loop on a fresh loopback port for the
// length of the test. It returns the address ("127.0.0.1:NNNNN") and the
// server's output.
func Serve(t testing.TB, serve ServeFunc) (addr string, out *Output) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	out = &Output{}
	done := make(chan error, 1)
	go func() { done <- serve(ln, out) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("serve returned %v", err)
		}
	})
	return ln.Addr().String(), out
}

// Start is Serve for the servers of chapters 02 to 05: newServer(out)
// makes one that prints to out, and serve(s, ln) runs its accept loop. If
// change is not nil, it adjusts the new server's settings (a shorter
// timeout, a smaller limit) before the server serves.
//
//	booktest.Start(t, newServer, (*server).serve, func(s *server) { s.headTimeout = time.Second })
func Start[S any](t testing.TB, newServer func(io.Writer) S, serve func(S, net.Listener) error, change func(S)) (addr string, out *Output) {
	t.Helper()
	return Serve(t, func(ln net.Listener, out io.Writer) error {
		s := newServer(out)
		if change != nil {
			change(s)
		}
		return serve(s, ln)
	})
}

// RepoRoot returns the directory that holds go.mod, so tests can find docs/
// whichever chapter folder they run in.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// FailingListener fails its first Failures calls to Accept with EMFILE, the
// error a server gets when it has run out of file descriptors, then accepts
// from the Listener it wraps: a server must outlive such errors.
type FailingListener struct {
	net.Listener
	mu       sync.Mutex
	Failures int
}

func (l *FailingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.Failures > 0 {
		l.Failures--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}
