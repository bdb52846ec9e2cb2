package main

// The servers chapter 06 is compared with. Each runs in a process of its
// own, as chapter 06 does: this same program, started again with the
// environment variable WSBENCH_SERVE set to "gorilla" or "gws". Each serves
// the two endpoints the load generator drives, through net/http as chapter
// 06 does:
//
//	/echo           every text and binary message sent back unchanged
//	/ws?name=NICK   a chat room that speaks chapter 06's JSON events
//
// The echo handlers are the ones each library's own echo example shows.
// The chat room is a minimal copy of chapter 06's hub, written once for
// both libraries (see room): a goroutine per client writes the frames
// queued on its buffered channel, as gorilla's chat example does.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/gorilla/websocket"
	"github.com/lxzan/gws"
)

// serveEnv names the server a child process runs instead of the comparison.
const serveEnv = "WSBENCH_SERVE"

// serveChild runs the server named by WSBENCH_SERVE on 127.0.0.1, on a free
// port that it prints as chapter 06 does, until it is killed.
func serveChild(name string) {
	mux := http.NewServeMux()
	switch name {
	case "gorilla":
		gorillaRoutes(mux, false)
	case "gorilla-stream":
		gorillaRoutes(mux, true)
	case "gws":
		gwsRoutes(mux)
	case "floor":
		floorRoutes(mux)
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: want gorilla, gorilla-stream, gws or floor\n", serveEnv, name)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s listening: open http://%s/\n", name, ln.Addr())
	err = (&http.Server{Handler: mux}).Serve(ln)
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// gorillaRoutes serves gorilla/websocket's echo as its examples/echo does:
// ReadMessage and WriteMessage, with the default Upgrader (which reuses
// net/http's 4 KiB buffers). With stream, it echoes as gorilla's Autobahn
// test server does instead: NextReader copied into NextWriter, which sends
// a large message as a series of 4 KiB frames.
func gorillaRoutes(mux *http.ServeMux, stream bool) {
	var up websocket.Upgrader
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for stream {
			mt, r, err := c.NextReader()
			if err != nil {
				return
			}
			w, err := c.NextWriter(mt)
			if err != nil {
				return
			}
			if _, err := io.Copy(w, r); err != nil {
				return
			}
			if err := w.Close(); err != nil {
				return
			}
		}
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	})
	room := newRoom()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		m := room.join(r.URL.Query().Get("name"), func(frame []byte) error {
			return c.WriteMessage(websocket.TextMessage, frame)
		}, func() { c.Close() })
		if m == nil {
			return
		}
		defer room.leave(m)
		for {
			_, text, err := c.ReadMessage()
			if err != nil {
				return
			}
			room.say(m, string(text))
		}
	})
}

// gwsRoutes serves lxzan/gws's echo as its examples/echo does: OnMessage
// writes the message back, with UTF-8 checks on (as chapter 06 has them)
// and no compression (which neither other server offers).
func gwsRoutes(mux *http.ServeMux) {
	echo := gws.NewUpgrader(gwsEcho{}, &gws.ServerOption{CheckUtf8Enabled: true})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		socket, err := echo.Upgrade(w, r)
		if err != nil {
			return
		}
		go socket.ReadLoop()
	})
	chat := &gwsChat{room: newRoom()}
	chatUp := gws.NewUpgrader(chat, &gws.ServerOption{CheckUtf8Enabled: true})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		socket, err := chatUp.Upgrade(w, r)
		if err != nil {
			return
		}
		m := chat.room.join(r.URL.Query().Get("name"), func(frame []byte) error {
			return socket.WriteMessage(gws.OpcodeText, frame)
		}, func() { socket.NetConn().Close() })
		if m == nil {
			socket.NetConn().Close()
			return
		}
		socket.Session().Store("member", m)
		go socket.ReadLoop()
	})
}

type gwsEcho struct{ gws.BuiltinEventHandler }

func (gwsEcho) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	socket.WriteMessage(message.Opcode, message.Bytes())
}

type gwsChat struct {
	gws.BuiltinEventHandler
	room *room
}

func (h *gwsChat) member(socket *gws.Conn) *member {
	v, _ := socket.Session().Load("member")
	m, _ := v.(*member)
	return m
}

func (h *gwsChat) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	if m := h.member(socket); m != nil {
		h.room.say(m, message.Data.String())
	}
}

func (h *gwsChat) OnClose(socket *gws.Conn, err error) {
	if m := h.member(socket); m != nil {
		h.room.leave(m)
	}
}

// room is the chat room of the gorilla and gws servers: chapter 06's hub
// without its checks, speaking the same events. Each event is encoded once,
// as JSON, and queued for every member; a member's own goroutine writes its
// queue out with the library's WriteMessage.
type room struct {
	mu      sync.Mutex
	members map[string]*member
}

type member struct {
	name  string
	queue chan []byte
	gone  chan struct{}
	close func()
}

// event is chapter 06's: the same fields, in the same order.
type event struct {
	Type   string   `json:"type"`
	Name   string   `json:"name"`
	Text   string   `json:"text,omitempty"`
	Reason string   `json:"reason,omitempty"`
	Online []string `json:"online,omitempty"`
}

func newRoom() *room { return &room{members: map[string]*member{}} }

// join adds a member that sends with write, or returns nil if the name is
// taken. The member first hears a welcome, then everyone hears the join.
func (r *room) join(name string, write func([]byte) error, close func()) *member {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := strings.ToLower(name)
	if name == "" || r.members[key] != nil {
		return nil
	}
	m := &member{name: name, queue: make(chan []byte, 64), gone: make(chan struct{}), close: close}
	r.members[key] = m
	go func() {
		for {
			select {
			case frame := <-m.queue:
				if write(frame) != nil {
					return
				}
			case <-m.gone:
				return
			}
		}
	}()
	online := make([]string, 0, len(r.members))
	for _, o := range r.members {
		online = append(online, o.name)
	}
	slices.Sort(online)
	m.queue <- encode(event{Type: "welcome", Name: name, Online: online})
	r.broadcastLocked(event{Type: "join", Name: name})
	return m
}

func (r *room) say(m *member, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members[strings.ToLower(m.name)] == m {
		r.broadcastLocked(event{Type: "message", Name: m.name, Text: text})
	}
}

func (r *room) leave(m *member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeLocked(m, "left")
}

func (r *room) removeLocked(m *member, reason string) {
	key := strings.ToLower(m.name)
	if r.members[key] != m {
		return
	}
	delete(r.members, key)
	close(m.gone)
	r.broadcastLocked(event{Type: "leave", Name: m.name, Reason: reason})
}

// broadcastLocked queues the event for every member; one whose queue is
// full has fallen too far behind and is dropped, as in chapter 06.
func (r *room) broadcastLocked(e event) {
	text := encode(e)
	var slow []*member
	for _, m := range r.members {
		select {
		case m.queue <- text:
		default:
			slow = append(slow, m)
		}
	}
	for _, m := range slow {
		m.close()
		r.removeLocked(m, "too slow")
	}
}

func encode(e event) []byte {
	text, _ := json.Marshal(e)
	return text
}
