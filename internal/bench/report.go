package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report holds every measurement of a run.
type report struct {
	cfg      config
	machine  string
	started  time.Time
	finished time.Time
	rows     []*row
}

// row is one scenario: a measurement per server per round. Echo figures
// are messages per second, broadcast figures broadcasts per second (both:
// higher is better), memory figures bytes per connection (lower is better).
type row struct {
	name   string
	kind   string // "echo", "broadcast" or "memory"
	size   int    // message size, for MB/s
	values map[string][]float64
	cpu    map[string][]float64 // echo: the server's CPU time per message, in µs
}

func newReport(cfg config) *report {
	return &report{cfg: cfg, machine: machine(), started: time.Now().UTC()}
}

// row returns the named row, adding it the first time.
func (r *report) row(name, kind string, size int) *row {
	for _, w := range r.rows {
		if w.name == name {
			return w
		}
	}
	w := &row{name: name, kind: kind, size: size, values: map[string][]float64{}, cpu: map[string][]float64{}}
	r.rows = append(r.rows, w)
	return w
}

func (w *row) add(server string, v float64) { w.values[server] = append(w.values[server], v) }

func (w *row) addCPU(server string, d time.Duration) {
	w.cpu[server] = append(w.cpu[server], float64(d)/1e3)
}

func (w *row) median(server string) float64 { return median(w.values[server]) }

func median(values []float64) float64 {
	v := slices.Clone(values)
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// ratio is the first server's median over other's, so above 1 means faster
// (echo, broadcast) or bigger (memory).
func (r *report) ratio(w *row, other string) float64 {
	return w.median(r.cfg.servers[0]) / w.median(other)
}

// geomean is the geometric mean of the echo ratios against other.
func (r *report) geomean(other string) float64 {
	sum, n := 0.0, 0
	for _, w := range r.rows {
		if w.kind == "echo" {
			sum += math.Log(r.ratio(w, other))
			n++
		}
	}
	return math.Exp(sum / float64(n))
}

// The targets chapter 06 is held to (docs/06-07-performance.md), against
// lxzan/gws, the fastest Go library we know: echo throughput at least
// gws's overall (geometric mean of the ratios), no scenario under 0.9 of
// it, and no more server CPU per echo overall; and no more memory per idle
// connection than maxIdleBytes or than any server in the run.
const (
	baseline     = "gws"
	minGeomean   = 1.0
	minEchoRatio = 0.9
	maxIdleBytes = 8 << 10
)

// cpuGeomean is the geometric mean, over the echo scenarios, of chapter
// 06's CPU time per message over other's.
func (r *report) cpuGeomean(other string) float64 {
	sum, n := 0.0, 0
	for _, w := range r.rows {
		if w.kind == "echo" {
			sum += math.Log(median(w.cpu[r.cfg.servers[0]]) / median(w.cpu[other]))
			n++
		}
	}
	return math.Exp(sum / float64(n))
}

// misses lists the targets the run missed.
func (r *report) misses() []string {
	if !slices.Contains(r.cfg.servers, baseline) {
		return nil
	}
	var m []string
	if g := r.geomean(baseline); g < minGeomean {
		m = append(m, fmt.Sprintf("echo geometric mean %.2f < %.1f", g, minGeomean))
	}
	if c := r.cpuGeomean(baseline); c > 1 {
		m = append(m, fmt.Sprintf("CPU per echo %.2f × %s's", c, baseline))
	}
	for _, w := range r.rows {
		if ratio := r.ratio(w, baseline); w.kind == "echo" && ratio < minEchoRatio {
			m = append(m, fmt.Sprintf("%s: %.2f < %.1f", w.name, ratio, minEchoRatio))
		}
		if w.kind != "memory" {
			continue
		}
		if v := w.median(r.cfg.servers[0]); v > maxIdleBytes {
			m = append(m, fmt.Sprintf("%s: %.1f KiB > %d KiB", w.name, v/1024, maxIdleBytes>>10))
		}
		for _, other := range r.cfg.servers[1:] {
			if ratio := r.ratio(w, other); ratio > 1 {
				m = append(m, fmt.Sprintf("%s: %.2f × %s's", w.name, ratio, label(other)))
			}
		}
	}
	return m
}

// machine describes where the figures come from.
func machine() string {
	model := "unknown CPU"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(info), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	mem := ""
	if info, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(info), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d)%s, %s %s, %s/%s, Linux %s",
		model, runtime.NumCPU(), runtime.GOMAXPROCS(0), mem, "Go", strings.TrimPrefix(runtime.Version(), "go"),
		runtime.GOOS, runtime.GOARCH, strings.TrimSpace(string(kernel)))
}

// cell formats a server's median in a row's unit.
func (w *row) cell(server string) string {
	v := w.median(server)
	switch w.kind {
	case "echo":
		return fmt.Sprintf("%s msg/s · %s MB/s", thousands(v), mbps(v*float64(w.size)/1e6))
	case "broadcast":
		return fmt.Sprintf("%.2f ms · %s/s", 1000/v, thousands(v))
	default:
		return fmt.Sprintf("%.1f KiB", v/1024)
	}
}

func mbps(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return thousands(v)
}

// writeMarkdown prints the table, the geometric means, the targets and
// every measurement.
func (r *report) writeMarkdown(out io.Writer) {
	s := r.cfg.servers
	fmt.Fprintf(out, "Machine: %s.  \n", r.machine)
	fmt.Fprintf(out, "Run: %s to %s UTC, %d round(s) of %v per server and scenario, servers alternating; medians.\n\n",
		r.started.Format("2006-01-02 15:04"), r.finished.Format("15:04"), r.cfg.rounds, r.cfg.trial)
	head := "| Scenario |"
	rule := "| --- |"
	for _, name := range s {
		head += " " + label(name) + " |"
		rule += " ---: |"
	}
	for _, name := range s[1:] {
		head += fmt.Sprintf(" %s / %s |", s[0], name)
		rule += " ---: |"
	}
	fmt.Fprintln(out, head)
	fmt.Fprintln(out, rule)
	for _, w := range r.rows {
		name := w.name
		if w.kind == "memory" {
			name += " (lower is better)"
		}
		line := "| " + name + " |"
		for _, server := range s {
			line += " " + w.cell(server) + " |"
		}
		for _, other := range s[1:] {
			line += fmt.Sprintf(" %.2f |", r.ratio(w, other))
		}
		fmt.Fprintln(out, line)
	}
	if r.cfg.runs("echo") {
		line := "| **Echo, geometric mean of the ratios** |" + strings.Repeat(" |", len(s))
		for _, other := range s[1:] {
			line += fmt.Sprintf(" **%.2f** |", r.geomean(other))
		}
		fmt.Fprintln(out, line)
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Echo: round trips per second, all connections together, and the payload they carried one way. "+
		"Broadcast: time for one message to reach every client, and broadcasts per second. "+
		"Ratios: chapter 06's median over the other server's (above 1: 06 is faster, or for memory uses more).")
	fmt.Fprintln(out)
	if r.cfg.short {
		fmt.Fprintln(out, "Targets: not judged on a short run.")
	} else if !r.cfg.runs("echo") || !r.cfg.runs("memory") {
		fmt.Fprintln(out, "Targets: not judged on a partial run.")
	} else if m := r.misses(); len(m) == 0 {
		fmt.Fprintf(out, "Targets this program judges: all met (against %s: echo geometric mean ≥ %.1f, no echo scenario under %.1f, CPU per echo no more; idle memory at most %d KiB and no more than any other server's).\n",
			label(baseline), minGeomean, minEchoRatio, maxIdleBytes>>10)
	} else {
		fmt.Fprintf(out, "Targets this program judges: missed: %s.\n", strings.Join(m, "; "))
	}
	fmt.Fprintln(out)
	if r.cfg.runs("echo") || r.cfg.runs("broadcast") {
		fmt.Fprintln(out, "The servers' CPU time per echoed message or per broadcast (µs, user and system, median; lower is better). "+
			"Less disturbed by other load on the machine than the rates, it shows what each message costs the server:")
		fmt.Fprintln(out)
		fmt.Fprintln(out, head)
		fmt.Fprintln(out, rule)
		for _, w := range r.rows {
			if w.kind == "memory" {
				continue
			}
			line := "| " + w.name + " |"
			for _, server := range s {
				line += fmt.Sprintf(" %.1f |", median(w.cpu[server]))
			}
			for _, other := range s[1:] {
				line += fmt.Sprintf(" %.2f |", median(w.cpu[s[0]])/median(w.cpu[other]))
			}
			fmt.Fprintln(out, line)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out, "Every measurement, in the order of the rounds:")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "```")
	for _, w := range r.rows {
		for _, server := range s {
			fmt.Fprintf(out, "%-42s %-14s", w.name, server)
			for _, v := range w.values[server] {
				switch w.kind {
				case "memory":
					fmt.Fprintf(out, " %8.0f", v)
				case "broadcast":
					fmt.Fprintf(out, " %8.1f", v)
				default:
					fmt.Fprintf(out, " %8.0f", v)
				}
			}
			fmt.Fprintln(out)
		}
	}
	fmt.Fprintln(out, "```")
	fmt.Fprintln(out, "(msg/s for echo, broadcasts/s, bytes per idle connection)")
}

// label names a server in the table.
func label(name string) string {
	switch name {
	case "06":
		return "chapter 06"
	case "gorilla":
		return "gorilla/websocket"
	case "gws":
		return "lxzan/gws"
	case "node-ws":
		return "Node.js ws"
	}
	return name
}

// svg draws the medians as horizontal bars, one group per scenario, each
// bar scaled to the largest of its group and labelled with its figure. For
// memory a shorter bar is better.
func (r *report) svg() string {
	const (
		width   = 860
		left    = 250 // room for the scenario names
		right   = 210 // room for the figures
		barH    = 16
		gap     = 4
		groupGp = 22
		top     = 96
	)
	colors := map[string]string{"06": "#2b6cb0", "gorilla": "#718096", "gorilla-stream": "#a0aec0", "gws": "#dd8a2b", "node-ws": "#38a169", "floor": "#cbd5e0"}
	s := r.cfg.servers
	groupH := len(s)*(barH+gap) - gap
	height := top + len(r.rows)*(groupH+groupGp) + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="16" y="24" font-size="16" font-weight="bold">Chapter 06 against gorilla/websocket, lxzan/gws and Node.js ws</text>`+"\n")
	fmt.Fprintf(&b, `<text x="16" y="42" fill="#4a5568">%s</text>`+"\n", html.EscapeString(r.machine))
	fmt.Fprintf(&b, `<text x="16" y="58" fill="#4a5568">%s UTC · medians of %d round(s) · loopback TCP · longer is better, except memory</text>`+"\n",
		r.finished.Format("2006-01-02"), r.cfg.rounds)
	x := left
	for _, name := range s {
		fmt.Fprintf(&b, `<rect x="%d" y="68" width="12" height="12" fill="%s"/><text x="%d" y="78">%s</text>`+"\n", x, colors[name], x+16, label(name))
		x += 150
	}
	plot := width - left - right
	y := top
	for _, w := range r.rows {
		name := w.name
		if w.kind == "memory" {
			name = "memory per idle connection"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-10, y+groupH/2+4, html.EscapeString(name))
		if w.kind == "memory" {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="#4a5568" font-size="11">(%s connections, shorter is better)</text>`+"\n",
				left-10, y+groupH/2+18, thousands(float64(r.cfg.idleConns)))
		}
		most := 0.0
		for _, name := range s {
			most = max(most, w.median(name))
		}
		for i, name := range s {
			v := w.median(name)
			bw := 0
			if most > 0 && !math.IsNaN(v) {
				bw = int(math.Round(float64(plot) * v / most))
			}
			by := y + i*(barH+gap)
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", left, by, max(bw, 1), barH, colors[name])
			text := w.short(name)
			if i == 0 && slices.Contains(s, baseline) {
				text += fmt.Sprintf(" (%.2f× gorilla)", r.ratio(w, baseline))
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", left+bw+6, by+barH-4, html.EscapeString(text))
		}
		y += groupH + groupGp
	}
	fmt.Fprintf(&b, `<text x="16" y="%d" fill="#4a5568" font-size="11">Drawn by internal/bench (go run . -svg ...). Method and caveats: docs/06-07-performance.md.</text>`+"\n", height-14)
	b.WriteString("</svg>\n")
	return b.String()
}

// short is a bar's label in the chart.
func (w *row) short(server string) string {
	v := w.median(server)
	switch w.kind {
	case "echo":
		if w.size >= 64<<10 {
			return fmt.Sprintf("%s MB/s", mbps(v*float64(w.size)/1e6))
		}
		return fmt.Sprintf("%s msg/s", thousands(v))
	case "broadcast":
		return fmt.Sprintf("%s broadcasts/s", thousands(v))
	default:
		return fmt.Sprintf("%.1f KiB", v/1024)
	}
}
