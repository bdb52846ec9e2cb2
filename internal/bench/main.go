// Command bench compares chapter 06's server with two Go WebSocket
// libraries, github.com/gorilla/websocket and github.com/lxzan/gws, and
// with Node.js's ws package, driving all four with one load generator in
// the same run.
//
// Each server runs in a process of its own on loopback TCP: chapter 06 as
// the reader would build it (go build ./06-full-server), the Go libraries
// as this program started again in a server role (see servers.go), ws as
// node/server.js. The
// scenarios are run in rounds, and in each round the servers take turns in
// a rotated order (A B C, then B C A, ...), so that a machine that slows
// down for a while slows all three; each figure is the median of the
// rounds. The results are printed as a Markdown table, and drawn as an SVG
// bar chart with -svg.
//
// From the repository root:
//
//	cd internal/bench && go run . -svg ../../docs/img/performance.svg
//	cd internal/bench && go run . -short   # one short round, as CI runs it
//
// docs/06-07-performance.md explains the method and shows a run.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	if name := os.Getenv(serveEnv); name != "" {
		serveChild(name)
		return
	}
	cfg := defaultConfig(false)
	short := flag.Bool("short", false, "one short round, to check that everything works: "+cfg.shortSummary())
	flag.IntVar(&cfg.rounds, "rounds", cfg.rounds, "rounds: each figure is the median of this many measurements")
	flag.DurationVar(&cfg.trial, "trial", cfg.trial, "how long each server is driven in each scenario of each round")
	flag.IntVar(&cfg.idleConns, "idle-conns", cfg.idleConns, "connections opened for the idle memory figure")
	flag.IntVar(&cfg.chatClients, "chat-clients", cfg.chatClients, "chat clients that hear each broadcast")
	flag.StringVar(&cfg.root, "repo", "", "the book's repository root (default: found above the working directory)")
	flag.StringVar(&cfg.svg, "svg", "", "write the chart to this SVG file")
	servers := flag.String("servers", strings.Join(cfg.servers, ","), "the servers to compare, chapter 06 first: 06, gorilla, gorilla-stream, gws, node-ws, 06@REV (chapter 06 at a git revision), or floor (the least a broadcast costs here; with -only broadcast)")
	flag.StringVar(&cfg.only, "only", "", "run only these parts, comma-separated: echo, broadcast, memory")
	flag.BoolVar(&cfg.ablate, "ablate", false, "measure what each of chapter 06's optimisations buys, instead of comparing servers (echo scenarios and idle memory)")
	flag.BoolVar(&cfg.gate, "gate", false, "exit with status 1 if chapter 06 misses a target (see docs/06-07-performance.md)")
	flag.Parse()
	cfg.servers = strings.Split(*servers, ",")
	if *short {
		s := defaultConfig(true)
		s.root, s.svg, s.gate, s.only, s.servers, s.ablate = cfg.root, cfg.svg, cfg.gate, cfg.only, cfg.servers, cfg.ablate
		cfg = s
	}
	rep, err := run(cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if cfg.ablate {
		rep.writeAblation(os.Stdout)
		return
	}
	rep.writeMarkdown(os.Stdout)
	if cfg.svg != "" {
		if err := os.WriteFile(cfg.svg, []byte(rep.svg()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if cfg.gate && len(rep.misses()) > 0 {
		os.Exit(1)
	}
}

// config is what a run does.
type config struct {
	servers     []string // the first is the one compared with the others
	rounds      int
	trial       time.Duration
	idleConns   int
	chatClients int
	root        string // the repository, to build chapter 06 from
	svg         string
	gate        bool
	short       bool
	ablate      bool   // measure chapter 06 against itself with optimisations undone (ablate.go)
	only        string // comma-separated parts to run; all if empty
}

// runs reports whether part (echo, broadcast or memory) is to be run.
func (c config) runs(part string) bool {
	return c.only == "" || slices.Contains(strings.Split(c.only, ","), part)
}

// defaultConfig is a full run (about five minutes), or with short one
// round of short trials (about half a minute), for CI.
func defaultConfig(short bool) config {
	if short {
		return config{servers: []string{"06", "gorilla", "gws", "node-ws"}, rounds: 1, trial: 200 * time.Millisecond,
			idleConns: 2000, chatClients: 200, short: true}
	}
	return config{servers: []string{"06", "gorilla", "gws", "node-ws"}, rounds: 9, trial: time.Second,
		idleConns: 10000, chatClients: 1000}
}

func (c config) shortSummary() string {
	s := defaultConfig(true)
	return fmt.Sprintf("%d round of %v trials, %d idle connections, %d chat clients", s.rounds, s.trial, s.idleConns, s.chatClients)
}

// findRoot looks for the repository root above dir: the folder that holds
// 06-full-server/main.go.
func findRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "06-full-server", "main.go")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no 06-full-server/main.go above %s: use -repo", dir)
		}
	}
}

// rotated returns the servers in the order of round r: A B C, B C A, ...
func rotated(servers []string, r int) []string {
	k := r % len(servers)
	return append(append([]string(nil), servers[k:]...), servers[:k]...)
}

// run measures everything, logging its progress to log.
func run(cfg config, log io.Writer) (*report, error) {
	if slices.Contains(cfg.servers, "floor") && cfg.only != "broadcast" {
		return nil, errors.New("floor serves only the broadcast: run it with -only broadcast")
	}
	if cfg.root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		if cfg.root, err = findRoot(wd); err != nil {
			return nil, err
		}
	}
	if err := raiseFileLimit(uint64(cfg.idleConns + cfg.chatClients*len(cfg.servers) + 500)); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "wsbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintln(log, "building chapter 06 ...")
	var bins map[string]string
	if cfg.ablate {
		bins, err = buildVariants(cfg.root, tmp)
		cfg.servers = nil
		for _, v := range variants {
			cfg.servers = append(cfg.servers, v.name)
		}
		cfg.only = "echo,memory"
	} else {
		var bin06 string
		bin06, err = build06(cfg.root, tmp)
		bins = map[string]string{"06": bin06}
		// 06@REV: chapter 06 as it was at a git revision, to measure a
		// change against the code before it in the same run.
		for _, name := range cfg.servers {
			if rev, ok := strings.CutPrefix(name, "06@"); ok && err == nil {
				bins[name], err = build06At(cfg.root, rev, filepath.Join(tmp, rev))
			}
		}
	}
	if err != nil {
		return nil, err
	}

	rep := newReport(cfg)
	fmt.Fprintf(log, "%s\n", rep.machine)

	// Echo: all three servers up at once, fresh connections for every trial.
	servers := map[string]*server{}
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, name := range cfg.servers {
		s, err := startServer(name, bins)
		if err != nil {
			return nil, err
		}
		servers[name] = s
	}
	for r := range cfg.rounds {
		for _, sc := range echoScenarios {
			if !cfg.runs("echo") {
				break
			}
			row := rep.row(sc.name, "echo", sc.size)
			for _, name := range rotated(cfg.servers, r) {
				v, cpu, err := echoTrial(servers[name], sc, cfg.trial)
				if err != nil {
					return nil, err
				}
				row.add(name, v)
				row.addCPU(name, cpu)
				fmt.Fprintf(log, "round %d  %-24s %-8s %12.0f msg/s %10.2f µs CPU/msg\n", r+1, sc.name, name, v, float64(cpu)/1e3)
			}
		}
	}

	// Broadcast: every server's room open at once, the same members in
	// each for the whole run.
	rooms := map[string]*chatRoom{}
	defer func() {
		for _, room := range rooms {
			room.close()
		}
	}()
	for _, name := range cfg.servers {
		if !cfg.runs("broadcast") {
			break
		}
		fmt.Fprintf(log, "%s: %d clients join the chat room ...\n", name, cfg.chatClients)
		room, err := openRoom(servers[name], cfg.chatClients)
		if err != nil {
			return nil, err
		}
		rooms[name] = room
	}
	bname := fmt.Sprintf("1 KiB broadcast to %s chat clients", thousands(float64(cfg.chatClients)))
	for r := range cfg.rounds {
		if !cfg.runs("broadcast") {
			break
		}
		row := rep.row(bname, "broadcast", len(chatText))
		for _, name := range rotated(cfg.servers, r) {
			v, cpu, err := broadcastTrial(servers[name], rooms[name], cfg.trial)
			if err != nil {
				return nil, fmt.Errorf("%s broadcast: %w", name, err)
			}
			row.add(name, v)
			row.addCPU(name, cpu)
			fmt.Fprintf(log, "round %d  %-24s %-8s %12.1f broadcasts/s %10.0f µs CPU/broadcast\n", r+1, "broadcast", name, v, float64(cpu)/1e3)
		}
	}
	for _, room := range rooms {
		room.close()
	}
	clear(rooms)
	for _, s := range servers {
		s.stop()
	}
	clear(servers)

	// Idle memory: one server at a time, each a fresh process.
	mname := fmt.Sprintf("memory per idle connection, %s open", thousands(float64(cfg.idleConns)))
	for r := range min(cfg.rounds, 3) { // it varies little: three rounds are enough
		if !cfg.runs("memory") {
			break
		}
		row := rep.row(mname, "memory", 0)
		for _, name := range rotated(cfg.servers, r) {
			v, err := idleMemory(name, bins, cfg.idleConns)
			if err != nil {
				return nil, err
			}
			row.add(name, v)
			fmt.Fprintf(log, "round %d  %-24s %-8s %12.0f bytes per connection\n", r+1, "idle memory", name, v)
		}
	}
	rep.finished = time.Now().UTC()
	return rep, nil
}

// thousands formats a count as 10,000.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
