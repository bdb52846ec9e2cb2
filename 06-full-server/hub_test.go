package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

// The room's log gives every writer the bytes said after its bookmark,
// whole and in order, across chunk boundaries, after the log has forgotten
// what everyone has taken, and from a view taken before it grew.
func TestTheRoomsLogGivesBackWhatWasSaid(t *testing.T) {
	var l roomLog
	l.init()
	var said []byte // everything added, kept here to compare with
	sizes := []int{1, 100, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 7, 40, 0, 2}
	for i, n := range sizes {
		frame := bytes.Repeat([]byte{byte('a' + i)}, n)
		l.add(frame)
		said = append(said, frame...)
	}
	early := l.view.Load()
	require.Equal(t, int64(len(said)), early.end)

	read := func(v *logView, at int64) []byte {
		got := []byte{}
		for _, p := range v.since(nil, at) {
			got = append(got, p...)
		}
		return got
	}
	for _, at := range []int64{0, 1, 101, chunkSize - 1, chunkSize, chunkSize + 1, 5 * chunkSize, early.end - 1, early.end} {
		assert.Equal(t, said[at:], read(early, at), "from %d", at)
	}

	l.forget(2*chunkSize + 5)
	v := l.view.Load()
	assert.Equal(t, int64(2*chunkSize), v.start, "whole chunks before the bookmark are forgotten")
	assert.Equal(t, said[2*chunkSize+5:], read(v, 2*chunkSize+5))

	more := []byte(strings.Repeat("z", chunkSize))
	l.add(more)
	assert.Equal(t, said[chunkSize:], read(early, chunkSize), "a view does not change when the log grows")
	said = append(said, more...)
	v = l.view.Load()
	assert.Equal(t, said[v.start:], read(v, v.start))
	select {
	case <-early.grown:
	default:
		t.Error("an old view's grown is not closed after the log grew")
	}
	select {
	case <-v.grown:
		t.Error("the newest view's grown is closed")
	default:
	}
}

// Writers read the log with no lock while the hub adds to it and forgets:
// each must still get every byte, in order. Run with -race (as CI does), a
// write into bytes a published view covers is reported as a race.
func TestTheRoomsLogCanBeReadWhileItGrows(t *testing.T) {
	var l roomLog
	l.init()
	var said []byte
	for k := range 2000 {
		said = append(said, bytes.Repeat([]byte{byte(k)}, k%97*31+1)...)
	}
	const readers = 4
	var marks [readers]atomic.Int64
	got := make([][]byte, readers)
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			for at := int64(0); at < int64(len(said)); {
				v := l.view.Load()
				if at == v.end {
					<-v.grown
					continue
				}
				for _, p := range v.since(nil, at) {
					got[r] = append(got[r], p...)
				}
				at = v.end
				marks[r].Store(at)
			}
		})
	}
	for k, at := 0, 0; k < 2000; k++ {
		n := k%97*31 + 1
		l.add(said[at : at+n])
		at += n
		if k%100 == 99 {
			keep := l.end()
			for r := range readers {
				keep = min(keep, marks[r].Load())
			}
			l.forget(keep)
		}
	}
	wg.Wait()
	for r := range readers {
		assert.True(t, bytes.Equal(said, got[r]), "reader %d got %d bytes, not what was said", r, len(got[r]))
	}
}

// welcomeFrame writes the names as they are: every name validName lets in
// must be one encoding/json would write unchanged, and the frame must be
// the one encoding/json's text would make.
func TestWelcomeNeedsNoEscaping(t *testing.T) {
	for r := rune(0); r <= utf8.MaxRune; r++ {
		name := "a" + string(r)
		if validName(name) != nil {
			continue
		}
		var text bytes.Buffer
		enc := json.NewEncoder(&text)
		enc.SetEscapeHTML(false)
		require.NoError(t, enc.Encode(name))
		require.Equal(t, `"`+name+`"`+"\n", text.String(), "validName lets in %U, which JSON escapes", r)
	}
	online := []string{"Ann", "bob", "Zoë", "李雷", "हिन्दी", "x-y_z.1 2"}
	for _, name := range online {
		require.NoError(t, validName(name))
	}
	want := []byte(`{"type":"welcome","name":"Zoë","online":["Ann","bob","Zoë","李雷","हिन्दी","x-y_z.1 2"]}`)
	f, err := booktest.ReadFrame(bytes.NewReader(welcomeFrame("Zoë", online)))
	require.NoError(t, err)
	assert.Equal(t, booktest.Frame{Fin: true, Opcode: opText, Payload: want}, f)
	var e event
	require.NoError(t, json.Unmarshal(f.Payload, &e))
	assert.Equal(t, event{Type: "welcome", Name: "Zoë", Online: online}, e)
}

// A message bigger than the backlog still goes to the clients that have
// heard everything before it, however many such messages are said: only
// a client with more than the newest message waiting has fallen behind.
func TestAMessageBiggerThanTheBacklogArrives(t *testing.T) {
	addr, out := start(t, func(c *config) { c.chatBacklog = 1 << 10 })
	ann := joinChat(t, addr, "ann")
	ann.next() // welcome
	ann.next() // ann joined
	bob := joinChat(t, addr, "bob")
	bob.next()
	bob.next()
	assert.Equal(t, "join", ann.next().Type)
	text := strings.Repeat("x", 4000)
	for range 20 { // 80 KB: more than the log keeps for a 1 KiB backlog
		ann.say(text)
		for _, c := range []*chatClient{ann, bob} {
			e := c.next()
			require.Equal(t, "message", e.Type, "%+v", e)
			require.Equal(t, text, e.Text)
		}
	}
	assert.NotContains(t, out.String(), "chat client dropped")
}

// A client that stops reading is dropped once it is more than the backlog
// behind the log, not long after: the hub looks again when the slowest
// client could have fallen that far behind. The client reads the first
// 200 KB, so that it stops only after the room has looked several times.
func TestAClientIsDroppedOnceItIsABacklogBehind(t *testing.T) {
	const backlog, reads = 64 << 10, 200 << 10
	h := newHub(backlog, slog.New(slog.NewTextHandler(io.Discard, nil)))
	stuck, stuckPeer := joinOverPipe(t, h, "stuck")
	go io.CopyN(io.Discard, stuckPeer, reads) // then it reads no more
	// A client is judged once its writer has run (see the next test).
	require.Eventually(t, stuck.started.Load, 5*time.Second, time.Millisecond)

	text := strings.Repeat("x", 1000)
	said := event{Type: "message", Name: "someone", Text: text}
	slack := int64(2 * len(textFrame(said)))
	for range 1000 {
		h.mu.Lock()
		h.broadcastLocked(said)
		h.mu.Unlock()
		if stuck.taken.Load() < reads {
			// Until it stops reading, it keeps up: let its writer run.
			require.Eventually(t, func() bool { return stuck.taken.Load() == h.said.end() }, 5*time.Second, 50*time.Microsecond)
		}
		h.mu.Lock()
		gone := h.clients["stuck"] == nil
		behind := h.said.end() - stuck.taken.Load()
		h.mu.Unlock()
		require.LessOrEqual(t, behind, int64(backlog+backlog/8)+slack, "the stuck client is still in the room")
		if gone {
			assert.Greater(t, behind, int64(backlog), "dropped before it was a backlog behind")
			assert.Greater(t, stuck.taken.Load(), int64(reads), "dropped while it still read")
			return
		}
	}
	t.Fatal("the stuck client was never dropped")
}

// A newcomer is not judged before its writer has run: a room that says a
// backlog's worth before the writer's goroutine first gets a core has not
// been kept waiting by the client. With one P, and a test goroutine that
// does not block, the newcomer's writer can hardly run while the room
// talks; when it does (the runtime may preempt the test), the test tries
// again with a new room.
func TestANewcomerIsNotJudgedBeforeItsWriterRuns(t *testing.T) {
	const backlog = 4 << 10
	text := strings.Repeat("x", 1000)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for range 20 {
		h := newHub(backlog, slog.New(slog.NewTextHandler(io.Discard, nil)))
		newcomer, _ := joinOverPipe(t, h, "newcomer")
		h.mu.Lock()
		for range 20 { // 20 KB: five backlogs
			h.broadcastLocked(event{Type: "message", Name: "someone", Text: text})
		}
		in := h.clients["newcomer"] == newcomer
		h.mu.Unlock()
		if newcomer.started.Load() {
			continue // its writer ran after all: this room proves nothing
		}
		assert.True(t, in, "the newcomer was dropped before its writer ran")
		return
	}
	t.Fatal("the newcomer's writer ran every time: the test could not set the scene")
}

// joinOverPipe joins a client to h on a net.Pipe, whose writes wait until
// the returned peer end reads: the room's writes to it go exactly as far
// as the test lets them.
func joinOverPipe(t *testing.T, h *hub, name string) (*client, net.Conn) {
	limits := defaultConfig().limits
	server, peer := net.Pipe()
	t.Cleanup(func() { server.Close(); peer.Close() })
	c, err := h.join(name, newConn(server, nil, &limits, &messageMemory{max: 1 << 30}))
	require.NoError(t, err)
	return c, peer
}
