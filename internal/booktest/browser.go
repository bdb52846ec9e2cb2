package booktest

import (
	"context"
	"fmt"
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

// chromiumPath finds the system's Chromium. WSBOOK_CHROMIUM overrides the
// search for readers whose browser lives elsewhere.
func chromiumPath() string {
	if p := os.Getenv("WSBOOK_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return ""
		}
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser starts a fresh headless Chromium for one test and returns a
// chromedp context for a tab in it. Without Chromium the test is skipped with
// a message saying how to get it, unless RequireBrowserEnv is set.
func Browser(t testing.TB) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv(RequireBrowserEnv) != "" {
			t.Fatalf("%s is set but no Chromium was found: install it (apt-get install chromium) or set WSBOOK_CHROMIUM", RequireBrowserEnv)
		}
		t.Skip("browser test skipped: no Chromium found. Install it (e.g. apt-get install chromium) or point WSBOOK_CHROMIUM at a Chrome binary to run it.")
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

// Screenshot saves what the page shows as NAME.png in tmp/screenshots/ at
// the repository's root (ignored by git), and with -update also as
// docs/img/NAME.png, where the docs show it.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	root := RepoRoot(t)
	dirs := []string{filepath.Join(root, "tmp", "screenshots")}
	if *Update {
		dirs = append(dirs, filepath.Join(root, "docs", "img"))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, name+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", file)
	}
}
