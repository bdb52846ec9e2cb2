// Chapter 06: a complete server.
//
// Everything chapters 01 to 05 built, finished and made safe to deploy:
//
//   - handshake.go: the upgrade as part of net/http, with an origin check
//   - frame.go: the frame codec of chapters 04 and 05, with close codes and
//     UTF-8 checks
//   - conn.go: a connection: messages reassembled from fragments, control
//     frames, the closing handshake, keepalive pings, one writer at a time
//   - reader.go, read_unix.go: what arrives, buffered only while it waits
//     to be read
//   - park_linux.go: quiet connections waited for with no goroutine
//   - hub.go: a chat room where a slow client never delays the others
//   - limit.go: what all connections share: a cap on how many are open, and
//     on the memory their messages may hold
//   - main.go (this file): settings, routes, logs and graceful shutdown
//
// The page at / is the chat room, which talks to /ws?name=NICK. /echo sends
// every message back unchanged, for conformance tools.
//
//	go run ./06-full-server
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

//go:embed index.html
var page []byte

func main() {
	cfg, addr, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0) // -h: the usage was asked for, and printed
	}
	if err != nil {
		os.Exit(2) // the flag package has said what was wrong
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("chapter 06 listening: open http://%s/ in your browser (echo on ws://%s/echo)\n", ln.Addr(), ln.Addr())

	s := newServer(cfg, os.Stdout)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		s.shutdown()
	}()
	if err := s.serve(ln); !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("serve", "err", err)
		os.Exit(1)
	}
	s.wait()
}

// parseFlags reads the command line: one flag for each setting in config,
// with defaultConfig's values as defaults, and -addr. Usage and errors go
// to output.
func parseFlags(args []string, output io.Writer) (cfg config, addr string, err error) {
	cfg = defaultConfig()
	fs := flag.NewFlagSet("06-full-server", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&addr, "addr", "127.0.0.1:8002", "host:port to listen on (port 0 picks a free one)")
	origins := fs.String("origin", "", "comma-separated origins allowed besides the server's own host, e.g. http://localhost:3000")
	hosts := fs.String("host", "", "comma-separated host names allowed on connections that come in on loopback, besides localhost and IP addresses")
	fs.IntVar(&cfg.limits.MaxMessage, "max-message", cfg.limits.MaxMessage, "largest /echo message in bytes")
	fs.IntVar(&cfg.maxChatMessage, "max-chat-message", cfg.maxChatMessage, "largest chat message in bytes")
	fs.Int64Var(&cfg.maxMessageMemory, "max-message-memory", cfg.maxMessageMemory, "bytes all connections together may hold for messages being read; past it a message gets 1013")
	fs.IntVar(&cfg.chatBacklog, "chat-backlog", cfg.chatBacklog, "bytes of chat a client may fall behind before it is dropped")
	fs.IntVar(&cfg.chatRate, "chat-rate", cfg.chatRate, "bytes a second a chat client may send, beyond a quarter second's burst; a faster one waits")
	fs.IntVar(&cfg.maxConns, "max-conns", cfg.maxConns, "open connections at most; more are refused with 503 (0: a tenth below this process's file limit)")
	fs.IntVar(&cfg.maxHeaderBytes, "max-header-bytes", cfg.maxHeaderBytes, "largest request head in bytes (net/http allows 4096 more)")
	fs.DurationVar(&cfg.handshakeTimeout, "handshake-timeout", cfg.handshakeTimeout, "time a client has to send its handshake")
	fs.DurationVar(&cfg.idleTimeout, "idle-timeout", cfg.idleTimeout, "how long a kept-alive HTTP connection may wait for its next request")
	fs.DurationVar(&cfg.limits.PingInterval, "ping-interval", cfg.limits.PingInterval, "how often a quiet connection is pinged")
	fs.DurationVar(&cfg.limits.PongTimeout, "pong-timeout", cfg.limits.PongTimeout, "how long a pinged peer has to answer")
	fs.DurationVar(&cfg.limits.WriteTimeout, "write-timeout", cfg.limits.WriteTimeout, "how long one frame may take to send")
	fs.DurationVar(&cfg.limits.CloseTimeout, "close-timeout", cfg.limits.CloseTimeout, "how long the closing handshake may take")
	fs.DurationVar(&cfg.shutdownWait, "shutdown-wait", cfg.shutdownWait, "how long shutdown waits for connections to close")
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	// Sizes and the rate divide or bound memory: 0 or less would be no
	// limit, or a crash.
	for _, v := range []struct {
		name  string
		value int64
	}{
		{"max-message", int64(cfg.limits.MaxMessage)}, {"max-chat-message", int64(cfg.maxChatMessage)},
		{"max-message-memory", cfg.maxMessageMemory}, {"chat-backlog", int64(cfg.chatBacklog)},
		{"chat-rate", int64(cfg.chatRate)}, {"max-header-bytes", int64(cfg.maxHeaderBytes)},
	} {
		if v.value <= 0 {
			err := fmt.Errorf("-%s must be above 0, not %d", v.name, v.value)
			fmt.Fprintln(output, err)
			return cfg, "", err
		}
	}
	if *origins != "" {
		cfg.origins = strings.Split(*origins, ",")
	}
	if *hosts != "" {
		cfg.hosts = strings.Split(*hosts, ",")
	}
	return cfg, addr, nil
}

// config holds every setting, with its default in defaultConfig and a flag
// in parseFlags.
type config struct {
	limits           Limits // every connection's, /echo's MaxMessage included
	maxChatMessage   int    // the chat's own MaxMessage: a chat line, not a file
	chatBacklog      int    // bytes a chat client may fall behind the room
	chatRate         int    // bytes a second a chat client may send
	maxConns         int    // open connections, HTTP and WebSocket
	maxHeaderBytes   int
	maxMessageMemory int64 // for the messages being read, all connections together
	handshakeTimeout time.Duration
	idleTimeout      time.Duration // for HTTP connections between requests, not WebSockets
	shutdownWait     time.Duration
	origins          []string // allowed besides the server's own host
	hosts            []string // names for Host besides localhost and IP addresses, on connections that came in on loopback
}

func defaultConfig() config {
	return config{
		limits:           defaultLimits,
		maxChatMessage:   4 << 10,
		chatBacklog:      256 << 10,
		chatRate:         64 << 10,
		maxConns:         0, // a tenth below the file limit: see defaultMaxConns
		maxHeaderBytes:   8 << 10,
		maxMessageMemory: 1 << 30,
		handshakeTimeout: 10 * time.Second,
		idleTimeout:      time.Minute,
		shutdownWait:     2 * time.Second,
	}
}

// server ties the pieces together: net/http for everything before the
// handshake, the upgraders for /ws and /echo, the chat hub, and the set of
// open connections that shutdown closes.
type server struct {
	cfg  config
	log  *slog.Logger
	http *http.Server
	hub  *hub
	chat upgrader
	echo upgrader

	mu           sync.Mutex
	conns        map[*Conn]struct{}
	shuttingDown bool           // under mu: set once, by shutdown
	done         sync.WaitGroup // one per open connection
	sweeper      *time.Timer    // runs sweep every idleAfter
}

func newServer(cfg config, out io.Writer) *server {
	log := slog.New(slog.NewTextHandler(out, nil))
	memory := &messageMemory{max: cfg.maxMessageMemory}
	chatLimits := cfg.limits
	chatLimits.MaxMessage = cfg.maxChatMessage
	s := &server{
		cfg:   cfg,
		log:   log,
		hub:   newHub(cfg.chatBacklog, log),
		chat:  upgrader{origins: cfg.origins, hosts: cfg.hosts, limits: &chatLimits, memory: memory, log: log},
		echo:  upgrader{origins: cfg.origins, hosts: cfg.hosts, limits: &cfg.limits, memory: memory, log: log},
		conns: map[*Conn]struct{}{},
	}
	s.mu.Lock() // sweep reads s.sweeper under mu: it may run before this function returns
	s.sweeper = time.AfterFunc(idleAfter, s.sweep)
	s.mu.Unlock()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.HandleFunc("/ws", s.serveChat)
	mux.HandleFunc("/echo", s.serveEcho)
	// net/http's limits for what comes before a handshake: a connection that
	// is upgraded gets its own deadlines from Conn instead.
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: cfg.handshakeTimeout, // a half-sent handshake is dropped after this
		ReadTimeout:       cfg.handshakeTimeout, // and so is a request body that never ends
		WriteTimeout:      cfg.limits.WriteTimeout,
		IdleTimeout:       cfg.idleTimeout, // a kept-alive HTTP connection with no next request
		MaxHeaderBytes:    cfg.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// serve accepts connections from ln until shutdown, at most maxConns at a
// time.
func (s *server) serve(ln net.Listener) error {
	limit := s.cfg.maxConns
	if limit <= 0 {
		limit = defaultMaxConns()
	}
	return s.http.Serve(&limitListener{Listener: ln, max: int64(limit), log: s.log})
}

// serveEcho upgrades a request for /echo and hands the connection to
// echoMessages.
//
// Both handlers return as soon as the connection is open, and the
// connection lives on in goroutines of its own (Conn.Serve): net/http can
// then let go of what it kept for the request (its buffers, and the
// handler's stack, grown by the handshake), which is most of what an idle
// connection costs.
func (s *server) serveEcho(w http.ResponseWriter, r *http.Request) {
	if conn := s.open(w, r); conn != nil {
		s.echoMessages(conn, peer{r.RemoteAddr, r.URL.Path, ""})
	}
}

// serveChat upgrades a request for /ws?name=NICK and joins the room.
func (s *server) serveChat(w http.ResponseWriter, r *http.Request) {
	if conn := s.open(w, r); conn != nil {
		s.chatMessages(conn, peer{r.RemoteAddr, r.URL.Path, r.URL.Query().Get("name")})
	}
}

// peer is what the logs say about a connection, kept from its request.
type peer struct{ remote, path, name string }

// echoMessages sends every text and binary message back unchanged.
func (s *server) echoMessages(conn *Conn, p peer) {
	conn.Serve(func(opcode byte, payload []byte) {
		// A failed write means the connection is closing: the next read
		// returns how it ended.
		conn.WriteMessage(opcode, payload)
	}, func(err error) {
		s.logEnd(p, err)
		s.closed(conn)
	})
}

// chatSendBuffer is the most a chat client's socket may hold of what the
// room sent it and it has not read (Linux doubles it for its bookkeeping).
// Left to itself the kernel lets it grow to megabytes: a client that stops
// reading would take that much kernel memory before its bookmark even
// fell behind, and in a hostile run a thousand such clients got clients
// that read dropped as too slow as well.
const chatSendBuffer = 64 << 10

// chatMessages joins the room and says each text message.
func (s *server) chatMessages(conn *Conn, p peer) {
	if b, ok := conn.netConn.(interface{ SetWriteBuffer(int) error }); ok {
		b.SetWriteBuffer(chatSendBuffer)
	}
	c, err := s.hub.join(p.name, conn)
	if err != nil {
		conn.Close(closePolicy, err.Error())
		// Messages are dropped while closing: wait for the client's close,
		// or the timeout.
		conn.Serve(func(byte, []byte) {}, func(err error) {
			s.logEnd(p, err)
			s.closed(conn)
		})
		return
	}
	conn.Serve(func(opcode byte, text []byte) {
		if opcode != opText {
			conn.Close(closeUnsupported, "the chat takes text messages")
			return
		}
		c.keepPace(s.hub.say(c, string(text)), s.cfg.chatRate)
	}, func(err error) {
		s.hub.leave(c, "left")
		s.logEnd(p, err)
		s.closed(conn)
	})
}

// open upgrades the request and counts the connection as open.
func (s *server) open(w http.ResponseWriter, r *http.Request) *Conn {
	up := &s.echo
	if r.URL.Path == "/ws" {
		up = &s.chat
	}
	conn := up.upgrade(w, r)
	if conn == nil {
		return nil
	}
	s.mu.Lock()
	if s.shuttingDown { // upgraded while shutdown was closing the others
		s.mu.Unlock()
		conn.Close(closeGoingAway, "server shutting down")
		conn.closeGracefully()
		return nil
	}
	s.conns[conn] = struct{}{}
	s.done.Add(1)
	s.mu.Unlock()
	s.log.Info("connection open", "remote", r.RemoteAddr, "path", r.URL.Path)
	return conn
}

// closed forgets a connection that has ended.
func (s *server) closed(conn *Conn) {
	conn.closeNow()
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
	s.done.Done()
}

// logEnd logs how a connection ended: the close code and reason when a
// closing handshake took place, or what cut it short.
func (s *server) logEnd(p peer, err error) {
	attrs := []any{"remote", p.remote, "path", p.path}
	if p.name != "" {
		attrs = append(attrs, "name", p.name)
	}
	var ce *CloseError
	if errors.As(err, &ce) {
		s.log.Info("connection closed", append(attrs, "code", ce.Code, "reason", ce.Reason)...)
		return
	}
	s.log.Info("connection lost", append(attrs, "err", err.Error())...)
}

// sweep nudges every open connection (see Conn.nudge), every idleAfter,
// until shutdown.
func (s *server) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return
	}
	for conn := range s.conns {
		conn.nudge()
	}
	s.sweeper.Reset(idleAfter)
}

// shutdown stops accepting connections and closes every open WebSocket with
// 1001 (going away), so that clients know to reconnect elsewhere or later.
func (s *server) shutdown() {
	s.log.Info("shutting down")
	// WebSockets first: net/http does not track hijacked connections, and
	// its Shutdown may spend the whole wait on idle HTTP connections.
	s.mu.Lock()
	s.shuttingDown = true
	for conn := range s.conns {
		go conn.Close(closeGoingAway, "server shutting down")
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownWait)
	defer cancel()
	s.http.Shutdown(ctx)
}

// wait gives open connections the time shutdown gave them (shutdownWait),
// and one CloseTimeout more, to finish their closing handshakes.
func (s *server) wait() {
	finished := make(chan struct{})
	go func() { s.done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(s.cfg.shutdownWait + s.cfg.limits.CloseTimeout):
		s.log.Warn("connections still open at exit")
	}
	s.log.Info("bye")
}
