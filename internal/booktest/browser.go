package booktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// RequireBrowserEnv, when set to anything, turns a missing Chromium from a
// skip into a failure. .ci/run sets it: in CI the browser tests must run.
const RequireBrowserEnv = "WSBOOK_REQUIRE_BROWSER"

// ChromiumEnv names the environment variable that points at a Chromium
// binary, for readers whose browser lives elsewhere.
const ChromiumEnv = "WSBOOK_CHROMIUM"

// chromiumPath finds the system's Chromium. ChromiumEnv overrides the
// search; when it names no executable file, chromiumPath returns "" and
// missing says so, naming the path. Without ChromiumEnv and without a
// Chromium on the PATH, it returns "" and a message saying how to get one.
func chromiumPath() (path, missing string) {
	if p := os.Getenv(ChromiumEnv); p != "" {
		if info, err := os.Stat(p); err != nil || info.IsDir() || info.Mode().Perm()&0o111 == 0 {
			return "", fmt.Sprintf("%s=%s is not an executable Chromium; unset it to search the PATH, or point it at a Chromium or Chrome binary", ChromiumEnv, p)
		}
		return p, ""
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, ""
		}
	}
	return "", "no Chromium found. Install it (e.g. apt-get install chromium) or point " + ChromiumEnv + " at a Chrome binary to run it."
}

// Browser starts a fresh headless Chromium for one test and returns a
// chromedp context for a tab in it. Without Chromium the test is skipped with
// a message saying how to get it, unless RequireBrowserEnv is set.
func Browser(t testing.TB) context.Context {
	t.Helper()
	path, missing := chromiumPath()
	if path == "" {
		if os.Getenv(RequireBrowserEnv) != "" {
			t.Fatalf("%s is set, so the browser tests must run, but: %s", RequireBrowserEnv, missing)
		}
		t.Skip("browser test skipped: " + missing)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 760),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		// Without these Chromium tries to reach Google's hosts and stalls
		// on a machine with no network.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), 90*time.Second)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
	})
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("starting Chromium (%s): %v", path, err)
	}
	return tabCtx
}

// Do runs chromedp actions and fails the test on error.
func Do(t testing.TB, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// Text returns the text content of the first element matching the CSS selector.
func Text(t testing.TB, ctx context.Context, selector string) string {
	t.Helper()
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(selector)))
	if err != nil {
		t.Fatalf("browser: reading %s: %v", selector, err)
	}
	return text
}

// WaitForText waits until the element matched by selector contains text.
func WaitForText(t testing.TB, ctx context.Context, selector, text string) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const el = document.querySelector(%q); return !!el && el.textContent.includes(%q); })()`, selector, text)
	waitCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(waitCtx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(selector)))
		t.Fatalf("page: %s never showed %q (%v); it shows:\n%s", selector, text, err, got)
	}
}

// DocsAddr is the address the docs show: every chapter listens on it unless
// told otherwise, so it is what a reader's browser shows.
const DocsAddr = "127.0.0.1:8002"

// Screenshot saves what the page shows as NAME.png in tmp/screenshots/ at
// the repository's root (ignored by git), and with -update also as
// docs/img/NAME.png, where the docs show it.
//
// A test serves the page on a free port, which changes from run to run, and
// the docs say 127.0.0.1:8002. So for the picture the page's own address
// (location.host) is shown as DocsAddr wherever it appears in the page's
// text or in a text field, and so is each shown string given in replace,
// which holds pairs: what the page shows, what the picture should show
// instead (for values that are random on every run, such as a token).
// Text carets are hidden, since they blink. The page is put back as it was
// right after the picture is taken.
//
// docs/img/NAME.png is only written when the picture differs, pixel for
// pixel, from the one already there, so that -update leaves an unchanged
// screenshot alone.
func Screenshot(t testing.TB, ctx context.Context, name string, replace ...string) {
	t.Helper()
	if len(replace)%2 != 0 {
		t.Fatalf("screenshot %s: replace holds pairs, what is shown and what to show instead; got %q", name, replace)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](showForDocsScript(replace))); err != nil {
		t.Fatalf("screenshot %s: preparing the page: %v", name, err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if _, undoErr := chromedp.Run(ctx, chromedp.Evaluate[int](undoShowForDocs)); undoErr != nil && err == nil {
		err = undoErr
	}
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	root := RepoRoot(t)
	scratch := filepath.Join(root, "tmp", "screenshots", name+".png")
	if err := os.MkdirAll(filepath.Dir(scratch), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(scratch, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", scratch)
	if !*Update {
		return
	}
	docs := filepath.Join(root, "docs", "img", name+".png")
	wrote, err := writePNG(docs, png)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if wrote {
		t.Logf("screenshot: wrote %s", docs)
	} else {
		t.Logf("screenshot: %s is unchanged", docs)
	}
}

// showForDocsScript returns the script Screenshot runs before the picture.
// It remembers every text it changes in window.booktestUndo, and returns how
// many it changed.
func showForDocsScript(replace []string) string {
	pairs, _ := json.Marshal(append([]string{}, replace...)) // [], not null, when there are none
	return fmt.Sprintf(showForDocs, DocsAddr, pairs)
}

// showForDocs is the script of showForDocsScript, without DocsAddr and the
// replace pairs (as JSON).
const showForDocs = `(() => {
	const pairs = [[location.host, %q]];
	const replace = %s;
	for (let i = 0; i + 1 < replace.length; i += 2) pairs.push([replace[i], replace[i + 1]]);
	const shown = (text) => pairs.reduce((t, [from, to]) => from === "" ? t : t.split(from).join(to), text);
	const undo = [];
	const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let node = walk.nextNode(); node; node = walk.nextNode()) {
		const text = shown(node.nodeValue);
		if (text !== node.nodeValue) { undo.push([node, "nodeValue", node.nodeValue]); node.nodeValue = text; }
	}
	for (const field of document.querySelectorAll("input, textarea")) {
		const text = shown(field.value);
		if (text !== field.value) { undo.push([field, "value", field.value]); field.value = text; }
	}
	const style = document.createElement("style");
	style.textContent = "* { caret-color: transparent !important; }";
	document.head.appendChild(style);
	undo.push([style, "remove"]);
	window.booktestUndo = undo;
	return undo.length;
})()`

// undoShowForDocs puts back what showForDocs changed.
const undoShowForDocs = `(() => {
	const undo = window.booktestUndo || [];
	for (const [target, what, old] of undo) {
		if (what === "remove") target.remove(); else target[what] = old;
	}
	delete window.booktestUndo;
	return undo.length;
})()`

// writePNG writes data to file unless the file already holds the same
// picture, pixel for pixel, and reports whether it wrote. Two PNG files can
// hold the same pixels in different bytes (another encoder, another
// compression level), so the pixels are compared, not the files.
func writePNG(file string, data []byte) (bool, error) {
	if old, err := os.ReadFile(file); err == nil {
		same, err := samePicture(old, data)
		if err != nil {
			return false, err
		}
		if same {
			return false, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return false, err
	}
	return true, os.WriteFile(file, data, 0o644)
}

// samePicture reports whether two PNG files hold the same pixels. A file
// that cannot be decoded is never the same as new: the new one replaces it.
func samePicture(old, new []byte) (bool, error) {
	if bytes.Equal(old, new) {
		return true, nil
	}
	b, err := png.Decode(bytes.NewReader(new))
	if err != nil {
		return false, fmt.Errorf("the new picture is not a PNG: %w", err)
	}
	a, err := png.Decode(bytes.NewReader(old))
	if err != nil || a.Bounds() != b.Bounds() {
		return false, nil
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return false, nil
			}
		}
	}
	return true, nil
}
