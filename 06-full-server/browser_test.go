package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

// joinInBrowser opens the page in a tab and joins the room as name.
func joinInBrowser(t *testing.T, ctx context.Context, addr, name string) {
	booktest.Do(t, ctx,
		chromedp.Navigate("http://"+addr+"/"),
		chromedp.SetValue(chromedp.CSS("#name"), name),
		chromedp.Click(chromedp.CSS("#connect")),
	)
	booktest.WaitForText(t, ctx, "#state", "OPEN")
}

func say(t *testing.T, ctx context.Context, text string) {
	booktest.Do(t, ctx,
		chromedp.SetValue(chromedp.CSS("#text"), text),
		chromedp.Click(chromedp.CSS("#send")),
	)
}

// Two Chromium tabs in the room see each other's messages, who is online,
// and each other leave.
func TestBrowserTwoTabsChat(t *testing.T) {
	addr, out := start(t, nil)
	ann := booktest.Browser(t)
	bob, cancel := chromedp.NewContext(ann) // a second tab in the same browser
	defer cancel()

	joinInBrowser(t, ann, addr, "Ann")
	joinInBrowser(t, bob, addr, "Bob")
	booktest.WaitForText(t, ann, "#online", "AnnBob")
	booktest.WaitForText(t, ann, "#messages", "Bob joined")

	say(t, ann, "Hi Bob, this is a WebSocket you can read line by line.")
	say(t, bob, "Hi Ann! Every byte of it.")
	for _, tab := range []context.Context{ann, bob} {
		booktest.WaitForText(t, tab, "#messages", "AnnHi Bob, this is a WebSocket you can read line by line.")
		booktest.WaitForText(t, tab, "#messages", "BobHi Ann! Every byte of it.")
	}
	// Both tabs show the room's one order.
	assert.Equal(t, booktest.Text(t, ann, "#messages")[strings.Index(booktest.Text(t, ann, "#messages"), "AnnHi"):],
		booktest.Text(t, bob, "#messages")[strings.Index(booktest.Text(t, bob, "#messages"), "AnnHi"):])
	booktest.Screenshot(t, ann, "06-full-server")

	booktest.Do(t, bob, chromedp.Click(chromedp.CSS("#leave")))
	booktest.WaitForText(t, ann, "#messages", "Bob left")
	booktest.WaitForText(t, bob, "#status", "Closed with 1000.") // the server echoes the code, not the reason
	out.WaitFor(t, "name=Bob code=1000 reason=bye")

	// An empty message is a message too: the page shows the name and
	// nothing after it.
	cat := joinChat(t, addr, "Cat")
	cat.say("")
	cat.say("after an empty one")
	booktest.WaitForText(t, ann, "#messages", "Catafter an empty one")
	assert.NotContains(t, booktest.Text(t, ann, "#messages"), "undefined")
}

// Chromium exchanges text and binary messages of 0 bytes to 16 MiB with
// /echo, and every byte comes back.
func TestBrowserEchoUpTo16MiB(t *testing.T) {
	addr, _ := start(t, nil)
	ctx := booktest.Browser(t)
	booktest.Do(t, ctx, chromedp.Navigate("http://"+addr+"/"))

	const script = `(async () => {
		const ws = new WebSocket("ws://" + location.host + "/echo");
		ws.binaryType = "arraybuffer";
		await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
		const next = () => new Promise((ok) => { ws.onmessage = (m) => ok(m.data); });
		const results = [];
		for (const n of [0, 125, 126, 65535, 65536, 1 << 20, 16 << 20]) {
			const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0x7f); // ASCII, so valid as text too
			for (const kind of ["text", "binary"]) {
				const reply = next();
				ws.send(kind === "text" ? new TextDecoder().decode(bytes) : bytes);
				const data = await reply;
				const got = typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data);
				const same = got.length === n && got.every((b, i) => b === bytes[i]);
				results.push(kind + " " + n + ": " + (same ? "same" : "DIFFERENT, got " + got.length + " bytes"));
			}
		}
		ws.close(1000);
		return results.join("\n");
	})()`
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](script, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	var want []string
	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 20, 16 << 20} {
		want = append(want, fmt.Sprintf("text %d: same", n), fmt.Sprintf("binary %d: same", n))
	}
	assert.Equal(t, strings.Join(want, "\n"), got)
}
