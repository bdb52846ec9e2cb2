package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary play the gorilla and gws servers too: the
// comparison starts its own executable again with WSBENCH_SERVE set.
func TestMain(m *testing.M) {
	if name := os.Getenv(serveEnv); name != "" {
		serveChild(name)
		return
	}
	os.Exit(m.Run())
}

// TestShortRun runs the comparison as -short does, as CI runs it: every
// server in every scenario, once and briefly. It checks that everything
// works and the output is complete, not how fast anything is.
func TestShortRun(t *testing.T) {
	cfg := defaultConfig(true)
	var log bytes.Buffer
	rep, err := run(cfg, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var out bytes.Buffer
	rep.writeMarkdown(&out)
	t.Log("\n" + out.String())
	table := out.String()
	for _, want := range []string{"| chapter 06 | gorilla/websocket | lxzan/gws | Node.js ws | 06 / gorilla | 06 / gws | 06 / node-ws |",
		"1 conn, 32 B text", "50 conns, 1 KiB text", "4 conns, 64 KiB binary", "1 conn, 1 MiB binary",
		"1 KiB broadcast to 200 chat clients", "memory per idle connection, 2,000 open", "geometric mean"} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q", want)
		}
	}
	for _, w := range rep.rows {
		for _, name := range cfg.servers {
			if v := w.median(name); !(v > 0) {
				t.Errorf("%s, %s: %v", w.name, name, v)
			}
		}
	}

	svg := rep.svg()
	if !strings.HasPrefix(svg, "<svg ") || !strings.HasSuffix(svg, "</svg>\n") || strings.Count(svg, "<rect ") < 3*len(rep.rows) {
		t.Errorf("the chart is not what it should be:\n%s", svg)
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), "performance.svg"), []byte(svg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The floor answers the broadcast scenario: every member hears every
// message; and it refuses a run with the echo or memory scenarios.
func TestTheFloorBroadcasts(t *testing.T) {
	s, err := startServer("floor", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	room, err := openRoom(s, 50)
	if err != nil {
		t.Fatal(err)
	}
	defer room.close()
	for range 3 {
		if err := room.broadcast(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := run(config{servers: []string{"06", "floor"}}, io.Discard); err == nil || !strings.Contains(err.Error(), "-only broadcast") {
		t.Errorf("floor in a full run: %v, want a refusal", err)
	}
}

func TestRotated(t *testing.T) {
	s := []string{"a", "b", "c"}
	for r, want := range []string{"abc", "bca", "cab", "abc"} {
		if got := strings.Join(rotated(s, r), ""); got != want {
			t.Errorf("round %d: %s, want %s", r, got, want)
		}
	}
}

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", 10000: "10,000"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %s, want %s", v, got, want)
		}
	}
}

// TestVariantsApply checks that every edit of -ablate still finds the code
// it changes in chapter 06, once: if this fails, chapter 06 has changed, and
// the edits in ablate.go must follow it.
func TestVariantsApply(t *testing.T) {
	root, err := findRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range variants {
		for _, e := range v.edits {
			code, err := os.ReadFile(filepath.Join(root, "06-full-server", e.file))
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(code), e.old); n != 1 {
				t.Errorf("variant %s: %q occurs %d times in 06-full-server/%s, not once", v.name, e.old, n, e.file)
			}
		}
	}

	// The plain variant must undo all of the word-at-a-time masking, not
	// just some of it: after its edits, maskFast is declared and never
	// called.
	frame, err := os.ReadFile(filepath.Join(root, "06-full-server", "frame.go"))
	if err != nil {
		t.Fatal(err)
	}
	plain := string(frame)
	for _, e := range variants[0].edits {
		if e.file == "frame.go" {
			plain = strings.Replace(plain, e.old, e.new, 1)
		}
	}
	if n := strings.Count(plain, "maskFast("); n != 1 {
		t.Errorf("variant %s still calls maskFast: %d mentions of maskFast( in frame.go, want only its declaration", variants[0].name, n-1)
	}
}

// TestVariantsBuild builds every -ablate variant: an edit that applies can
// still leave code that does not compile.
func TestVariantsBuild(t *testing.T) {
	root, err := findRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buildVariants(root, t.TempDir()); err != nil {
		t.Fatal(err)
	}
}
