package main

// With -ablate, the program measures what each of chapter 06's
// optimisations buys: it builds chapter 06 again with some of them undone,
// back to the plain code of the earlier chapters, and drives every build
// with the echo scenarios, in alternation as usual. The edits are made to
// a copy in a temporary folder; if chapter 06's code has changed so that
// an edit no longer applies, the run says which and stops.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// edit replaces old, which must occur exactly once in file, with new.
type edit struct{ file, old, new string }

var (
	// Chapter 04's mask, a byte at a time, instead of maskFast: for
	// control frames, and for data frames as their payload arrives.
	bytewiseMask = []edit{
		{"frame.go", "maskFast(f.maskKey, f.payload)", "mask(f.maskKey, f.payload)"},
		{"frame.go", "maskFast(key, p[:n])", "mask(key, p[:n])"},
	}
	// A new buffer for every message read and every frame written.
	newBuffers = []edit{
		{"conn.go", "c.message = c.message[:0]", "c.message = nil"},
		{"conn.go", "c.writeBuf = appendFrame(c.writeBuf[:0], true, opcode, payload)", "c.writeBuf = appendFrame(nil, true, opcode, payload)"},
	}
	// Every payload copied into the frame buffer after its header, as
	// chapter 05's appendFrame does, instead of large ones written from
	// where they lie with writev.
	copyPayload = edit{"conn.go", "if len(payload) <= 64<<10 {", "if true {"}
	// A deadline moved, and the keepalive timer reset, for every frame, as
	// chapter 05 moves its deadlines, instead of only when it has drifted
	// by an eighth of its time.
	exactDeadlines = []edit{
		{"conn.go", "if !c.closing() && by.Sub(c.readBy) < min(wait/8, c.limits.PongTimeout/2) {", "if false {"},
		{"conn.go", "c.closing() || by.Sub(c.writeBy) >= c.limits.WriteTimeout/8 {", "true {"},
		{"conn.go", "c.heard.Store(time.Now().UnixNano()) // the peer is alive", "c.pinger.Reset(c.limits.PingInterval) // the peer is alive"},
	}
	// The read buffer and the message buffer kept while the connection
	// waits, as a bufio.Reader and chapter 05's buffer are.
	keptBuffers = []edit{
		{"reader.go", "\tif rd.r == rd.w {\n\t\trd.release()\n\t}\n\treturn n, nil", "\treturn n, nil"},
		{"reader.go", "\tif !arrived {\n\t\trd.release()\n", "\tif !arrived {\n"},
		{"conn.go", "\tif cap(c.message) == firstStep {\n\t\tc.releaseMessage()\n\t}\n\tc.setReadDeadline()", "\tc.setReadDeadline()"},
	}
	// No sweep: a quiet connection's reading goroutine waits on, with the
	// stack it grew.
	// No poller: a quiet connection waits in a goroutine of its own, on
	// the smallest stack.
	noPoller = edit{"park_linux.go", "return idlePoller != nil && idlePoller.park(c)", "return false"}
	noSweep  = edit{"main.go", "\tfor conn := range s.conns {\n\t\tconn.nudge()\n\t}\n", ""}
)

// variant is chapter 06 with edits that undo some of its optimisations.
type variant struct {
	name, says string
	edits      []edit
}

// variants go from the plain code of the earlier chapters to chapter 06,
// adding one optimisation at a time.
var variants = []variant{
	{"plain", "chapter 06 with chapter 04's bytewise mask, a new buffer per message and frame, payloads copied into the frame as chapter 05 does, deadlines moved for every frame, buffers kept while waiting, no sweep and no poller",
		slices.Concat(bytewiseMask, []edit{copyPayload}, newBuffers, exactDeadlines, keptBuffers, []edit{noPoller, noSweep})},
	{"+mask", "then the mask eight bytes at a time (maskFast)", slices.Concat([]edit{copyPayload}, newBuffers, exactDeadlines, keptBuffers, []edit{noPoller, noSweep})},
	{"+reuse", "then the message buffer and the frame buffer reused from one message to the next", slices.Concat([]edit{copyPayload}, exactDeadlines, keptBuffers, []edit{noPoller, noSweep})},
	{"+writev", "then large payloads written from where they lie, with their header, in one writev", slices.Concat(exactDeadlines, keptBuffers, []edit{noPoller, noSweep})},
	{"+deadlines", "then deadlines moved only when they have drifted, and no keepalive timer reset per frame", slices.Concat(keptBuffers, []edit{noPoller, noSweep})},
	{"+pool", "then no buffer held while waiting: read and message buffers come from a pool shared by all connections", []edit{noPoller, noSweep}},
	{"+sweep", "then the sweep: a connection quiet for a while waits in a new goroutine, on the smallest stack", []edit{noPoller}},
	{"06", "then the poller: a quiet connection waits with no goroutine at all, its socket watched with epoll. Chapter 06 as it is", nil},
}

// buildVariants builds every variant from the chapter 06 at root, each in a
// folder of its own under dir, and returns the binaries by name.
func buildVariants(root, dir string) (map[string]string, error) {
	bins := map[string]string{}
	for _, v := range variants {
		src := filepath.Join(dir, v.name, "06-full-server")
		if err := os.MkdirAll(src, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, v.name, "go.mod"), []byte("module wsbook\n\ngo 1.25\n"), 0o644); err != nil {
			return nil, err
		}
		files, err := os.ReadDir(filepath.Join(root, "06-full-server"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			name := f.Name()
			if f.IsDir() || strings.HasSuffix(name, "_test.go") || !strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, ".html") {
				continue
			}
			if err := copyFile(filepath.Join(root, "06-full-server", name), filepath.Join(src, name)); err != nil {
				return nil, err
			}
		}
		for _, e := range v.edits {
			path := filepath.Join(src, e.file)
			code, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			if n := strings.Count(string(code), e.old); n != 1 {
				return nil, fmt.Errorf("variant %s: %q occurs %d times in 06-full-server/%s, not once: update the edits in ablate.go", v.name, e.old, n, e.file)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(code), e.old, e.new, 1)), 0o644); err != nil {
				return nil, err
			}
		}
		bin := filepath.Join(dir, v.name, "ws06")
		cmd := exec.Command("go", "build", "-o", bin, "./06-full-server")
		cmd.Dir = filepath.Join(dir, v.name)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("variant %s: go build: %v\n%s", v.name, err, out)
		}
		bins[v.name] = bin
	}
	return bins, nil
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o644)
}

// writeAblation prints the variants' medians, step by step, each with the
// factor it gained over the step before and over the plain code.
func (r *report) writeAblation(out io.Writer) {
	fmt.Fprintf(out, "Machine: %s.  \n", r.machine)
	fmt.Fprintf(out, "Run: %s to %s UTC, %d round(s) of %v per build and scenario, builds alternating; medians.\n\n",
		r.started.Format("2006-01-02 15:04"), r.finished.Format("15:04"), r.cfg.rounds, r.cfg.trial)
	for i, v := range variants {
		fmt.Fprintf(out, "%d. `%s`: %s\n", i+1, v.name, v.says)
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| Echo scenario | build | msg/s | × the step before | × plain | server CPU µs/msg |")
	fmt.Fprintln(out, "| --- | --- | ---: | ---: | ---: | ---: |")
	for _, w := range r.rows {
		if w.kind != "echo" {
			continue
		}
		plain := w.median(variants[0].name)
		prev := plain
		for i, v := range variants {
			m := w.median(v.name)
			step := "–"
			if i > 0 {
				step = fmt.Sprintf("%.2f", m/prev)
			}
			name := ""
			if i == 0 {
				name = w.name
			}
			fmt.Fprintf(out, "| %s | `%s` | %s | %s | %.2f | %.1f |\n", name, v.name, thousands(m), step, m/plain, median(w.cpu[v.name]))
			prev = m
		}
	}
	for _, w := range r.rows {
		if w.kind != "memory" {
			continue
		}
		fmt.Fprintln(out)
		fmt.Fprintf(out, "| %s | build | KiB | × the step before | × plain |\n", w.name)
		fmt.Fprintln(out, "| --- | --- | ---: | ---: | ---: |")
		plain := w.median(variants[0].name)
		prev := plain
		for _, v := range variants {
			m := w.median(v.name)
			fmt.Fprintf(out, "| | `%s` | %.1f | %.2f | %.2f |\n", v.name, m/1024, m/prev, m/plain)
			prev = m
		}
	}
}
