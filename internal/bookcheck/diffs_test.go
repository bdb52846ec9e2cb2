package bookcheck

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

// docs/diffs holds one file per pair of neighbouring chapters, 01-to-02.diff
// to 05-to-06.diff: a unified diff of every file of the chapter except its
// tests and any nested module (a folder with a go.mod of its own), so that
// a reader without a terminal can see what a chapter adds.
// This test makes them from the code and fails when one is stale;
//
//	go test ./internal/bookcheck -update
//
// rewrites them.
const diffsDir = "docs/diffs"

// contextLines is how many unchanged lines a hunk shows around a change, as
// diff -u and git diff do by default.
const contextLines = 3

// TestChapterDiffsAreCurrent compares every file in docs/diffs with a diff
// made from the chapters now.
func TestChapterDiffsAreCurrent(t *testing.T) {
	root := booktest.RepoRoot(t)
	chapters := chapterDirs(t, root)
	require.GreaterOrEqual(t, len(chapters), 2, "no chapter folders found in %s", root)
	for _, problem := range checkDiffs(t, root, chapters, *booktest.Update) {
		t.Error(problem)
	}
}

var chapterDirRE = regexp.MustCompile(`^[0-9][0-9]-[a-z0-9-]+$`)

// chapterDirs returns the chapter folders under root in reading order:
// 01-raw-socket, 02-parse-headers, ...
func chapterDirs(t *testing.T, root string) []string {
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && chapterDirRE.MatchString(e.Name()) {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs // os.ReadDir sorts by name
}

// diffName is the file in docs/diffs that compares chapter from with to.
func diffName(from, to string) string {
	return from[:2] + "-to-" + to[:2] + ".diff"
}

// checkDiffs compares every docs/diffs file under root with a diff made
// from the chapters now, and returns what is stale or missing. With update
// it writes them instead, and removes diff files no pair of chapters makes.
func checkDiffs(t *testing.T, root string, chapters []string, update bool) []string {
	dir := filepath.Join(root, filepath.FromSlash(diffsDir))
	// made holds every file docs/diffs should have, by slash-separated path
	// inside it: NN-to-MM.diff for each pair, and NN-to-MM/FILE.diff for
	// each file the pair changes.
	made := map[string]string{}
	for i := 1; i < len(chapters); i++ {
		name := diffName(chapters[i-1], chapters[i])
		whole, perFile, err := chapterDiff(root, chapters[i-1], chapters[i])
		require.NoError(t, err)
		made[name] = whole
		for file, text := range perFile {
			made[strings.TrimSuffix(name, ".diff")+"/"+file+".diff"] = text
		}
	}
	var problems []string
	names := slices.Sorted(maps.Keys(made))
	for _, name := range names {
		file := filepath.Join(dir, filepath.FromSlash(name))
		committed, err := os.ReadFile(file)
		if err == nil && string(committed) == made[name] {
			continue
		}
		if update {
			require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
			require.NoError(t, os.WriteFile(file, []byte(made[name]), 0o644))
			t.Logf("wrote %s/%s", diffsDir, name)
			continue
		}
		if os.IsNotExist(err) {
			problems = append(problems, fmt.Sprintf("%s/%s is missing (run go test ./internal/bookcheck -update)", diffsDir, name))
			continue
		}
		require.NoError(t, err)
		problems = append(problems, fmt.Sprintf("%s/%s is stale: the chapters have changed since it was made (run go test ./internal/bookcheck -update)\n%s",
			diffsDir, name, firstLines(unifiedDiff(string(committed), made[name], 1, false), 40)))
	}

	var leftOver []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if !d.IsDir() && strings.HasSuffix(rel, ".diff") {
			if _, ok := made[rel]; !ok {
				leftOver = append(leftOver, rel)
			}
		}
		return nil
	})
	require.NoError(t, err)
	for _, name := range leftOver {
		if update {
			file := filepath.Join(dir, filepath.FromSlash(name))
			require.NoError(t, os.Remove(file))
			os.Remove(filepath.Dir(file)) // the pair's folder, if that was its last file
			t.Logf("removed %s/%s: no pair of chapters makes it", diffsDir, name)
			continue
		}
		problems = append(problems, fmt.Sprintf("%s/%s compares no two neighbouring chapters' files (run go test ./internal/bookcheck -update to remove it)", diffsDir, name))
	}
	return problems
}

// firstLines returns at most n lines of text, saying how many it left out.
func firstLines(text string, n int) string {
	lines := splitLines(text)
	if len(lines) <= n {
		return text
	}
	return strings.Join(lines[:n], "") + fmt.Sprintf("... (%d more lines)\n", len(lines)-n)
}

// chapterDiff returns the diff from chapter folder from to chapter folder
// to (both under root), as stored in docs/diffs: a short preamble that lists
// the files, then a unified diff of each file that differs, with paths like
// a/01-raw-socket/main.go and b/02-parse-headers/main.go. It also returns
// each changed file's diff on its own, by the file's name.
func chapterDiff(root, from, to string) (whole string, perFile map[string]string, err error) {
	// Folders with a go.mod of their own (a benchmark harness) are not part
	// of the chapter's program: they are left out, and the preamble says so.
	oldFiles, oldModules, err := lessonFiles(filepath.Join(root, from))
	if err != nil {
		return "", nil, err
	}
	newFiles, newModules, err := lessonFiles(filepath.Join(root, to))
	if err != nil {
		return "", nil, err
	}
	perFile = map[string]string{}
	var modules []string
	for _, m := range oldModules {
		modules = append(modules, from+"/"+m)
	}
	for _, m := range newModules {
		modules = append(modules, to+"/"+m)
	}
	var names []string
	for name := range oldFiles {
		names = append(names, name)
	}
	for name := range newFiles {
		if _, ok := oldFiles[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)

	var summary, body strings.Builder
	width := 0
	for _, name := range names {
		width = max(width, len(name))
	}
	for _, name := range names {
		oldText, inOld := oldFiles[name]
		newText, inNew := newFiles[name]
		oldLabel, newLabel := "a/"+from+"/"+name, "b/"+to+"/"+name
		status := "changed"
		switch {
		case !inOld:
			status, oldLabel = "new", "/dev/null"
		case !inNew:
			status, newLabel = "removed", "/dev/null"
		case oldText == newText:
			fmt.Fprintf(&summary, "  %-*s  the same\n", width, name)
			continue
		}
		hunks := unifiedDiff(oldText, newText, contextLines, path.Ext(name) == ".go")
		added, removed := 0, 0
		for _, line := range splitLines(hunks) {
			switch {
			case strings.HasPrefix(line, "+"):
				added++
			case strings.HasPrefix(line, "-"):
				removed++
			}
		}
		fmt.Fprintf(&summary, "  %-*s  %-7s  +%d -%d\n", width, name, status, added, removed)
		fmt.Fprintf(&body, "\n--- %s\n+++ %s\n%s", oldLabel, newLabel, hunks)
		perFile[name] = fmt.Sprintf("%s from chapter %s to chapter %s: %s, +%d -%d.\n"+
			"A line that starts with - is only in %s, a line with + only in %s.\n"+
			"Made from the code by `go test ./internal/bookcheck -update`; do not edit.\n"+
			"\n--- %s\n+++ %s\n%s", name, from, to, status, added, removed, from[:2], to[:2], oldLabel, newLabel, hunks)
	}

	var out strings.Builder
	fmt.Fprintf(&out, "From chapter %s to chapter %s: a unified diff of every file\n", from, to)
	fmt.Fprintf(&out, "of the two folders except the tests (*_test.go and testdata/ are left out).\n")
	for _, m := range modules {
		fmt.Fprintf(&out, "The nested module %s (a program of its own, with its own\ngo.mod) is left out too.\n", m)
	}
	fmt.Fprintf(&out, "A line that starts with - is only in %s, a line with + only in %s;\n", from[:2], to[:2])
	fmt.Fprintf(&out, "\"@@ -12,7 +12,9 @@\" means 7 lines from line 12 of the old file became 9\n")
	fmt.Fprintf(&out, "lines from line 12 of the new one.\n")
	fmt.Fprintf(&out, "\n")
	fmt.Fprintf(&out, "Made from the code by `go test ./internal/bookcheck -update`; do not edit.\n")
	fmt.Fprintf(&out, "\n")
	out.WriteString(summary.String())
	out.WriteString(body.String())
	return out.String(), perFile, nil
}

// lessonFiles returns the text of every file in a chapter folder that is
// part of the program, by slash-separated path inside the folder. Tests
// (*_test.go, testdata/) are left out, and so are hidden files and binaries
// (anything that is not UTF-8 text, such as a test binary from go test -c).
// A folder with a go.mod of its own is a separate program (a benchmark
// harness, say): it is left out too, and returned in modules.
func lessonFiles(dir string) (files map[string]string, modules []string, err error) {
	files = map[string]string{}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && (strings.HasPrefix(d.Name(), ".") || d.IsDir() && d.Name() == "testdata") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if p != dir && d.IsDir() {
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				rel, _ := filepath.Rel(dir, p)
				modules = append(modules, filepath.ToSlash(rel)+"/")
				return filepath.SkipDir
			}
		}
		if d.IsDir() || !d.Type().IsRegular() || strings.HasSuffix(d.Name(), "_test.go") {
			return nil
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !utf8.Valid(raw) || slices.Contains(raw, 0) {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = string(raw)
		return nil
	})
	return files, modules, err
}

// The check must be able to fail: after a chapter changes, the committed
// diff is reported as stale until -update rewrites it.
func TestDiffCheckNoticesAChangedChapter(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(root, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	}
	write("01-first/main.go", "package main\n\nfunc main() {\n\tprintln(1)\n}\n")
	write("01-first/main_test.go", "package main\n")
	write("02-second/main.go", "package main\n\nfunc main() {\n\tprintln(2)\n}\n")
	write("02-second/main_test.go", "package main\n\n// a test, not part of the lesson\n")
	write("02-second/testdata/input.txt", "not part of the lesson either\n")
	write("02-second/main.test", "\x7fELF\x00\x01binary")
	chapters := []string{"01-first", "02-second"}

	problems := checkDiffs(t, root, chapters, false)
	require.Len(t, problems, 2)
	assert.Contains(t, problems[0], "docs/diffs/01-to-02.diff is missing")
	assert.Contains(t, problems[1], "docs/diffs/01-to-02/main.go.diff is missing")

	assert.Empty(t, checkDiffs(t, root, chapters, true), "-update writes the diff")
	assert.Empty(t, checkDiffs(t, root, chapters, false), "and then it is current")

	// The one change, as both the chapter's diff and main.go's own show it.
	const hunk = "--- a/01-first/main.go\n" +
		"+++ b/02-second/main.go\n" +
		"@@ -1,5 +1,5 @@\n" +
		" package main\n" +
		" \n" +
		" func main() {\n" +
		"-\tprintln(1)\n" +
		"+\tprintln(2)\n" +
		" }\n"
	made, err := os.ReadFile(filepath.Join(root, "docs", "diffs", "01-to-02.diff"))
	require.NoError(t, err)
	assert.Equal(t, "From chapter 01-first to chapter 02-second: a unified diff of every file\n"+
		"of the two folders except the tests (*_test.go and testdata/ are left out).\n"+
		"A line that starts with - is only in 01, a line with + only in 02;\n"+
		"\"@@ -12,7 +12,9 @@\" means 7 lines from line 12 of the old file became 9\n"+
		"lines from line 12 of the new one.\n"+
		"\n"+
		"Made from the code by `go test ./internal/bookcheck -update`; do not edit.\n"+
		"\n"+
		"  main.go  changed  +1 -1\n"+
		"\n"+
		hunk, string(made))

	one, err := os.ReadFile(filepath.Join(root, "docs", "diffs", "01-to-02", "main.go.diff"))
	require.NoError(t, err)
	assert.Equal(t, "main.go from chapter 01-first to chapter 02-second: changed, +1 -1.\n"+
		"A line that starts with - is only in 01, a line with + only in 02.\n"+
		"Made from the code by `go test ./internal/bookcheck -update`; do not edit.\n"+
		"\n"+
		hunk, string(one))

	write("02-second/main.go", "package main\n\nfunc main() {\n\tprintln(3)\n}\n")
	problems = checkDiffs(t, root, chapters, false)
	require.Len(t, problems, 2)
	assert.Contains(t, problems[0], "docs/diffs/01-to-02.diff is stale")
	assert.Contains(t, problems[0], "-+\tprintln(2)\n++\tprintln(3)\n", "the report shows what changed")
	assert.Contains(t, problems[1], "docs/diffs/01-to-02/main.go.diff is stale")

	write("02-second/extra.html", "<p>new</p>\n")
	write("02-second/bench/go.mod", "module bench\n")
	write("02-second/bench/main.go", "package main\n")
	write("docs/diffs/02-to-03.diff", "left over\n")
	write("docs/diffs/01-to-02/gone.go.diff", "left over\n")
	assert.Len(t, checkDiffs(t, root, chapters, false), 5, "two stale, a new file's diff missing, and two diffs no chapters make")
	assert.Empty(t, checkDiffs(t, root, chapters, true))
	assert.Empty(t, checkDiffs(t, root, chapters, false))
	assert.NoFileExists(t, filepath.Join(root, "docs", "diffs", "02-to-03.diff"))
	assert.NoFileExists(t, filepath.Join(root, "docs", "diffs", "01-to-02", "gone.go.diff"))
	assert.FileExists(t, filepath.Join(root, "docs", "diffs", "01-to-02", "extra.html.diff"))
	made, err = os.ReadFile(filepath.Join(root, "docs", "diffs", "01-to-02.diff"))
	require.NoError(t, err)
	assert.Contains(t, string(made), "  extra.html  new      +1 -0\n")
	assert.Contains(t, string(made), "The nested module 02-second/bench/ (a program of its own, with its own\ngo.mod) is left out too.\n")
	assert.NotContains(t, string(made), "bench/main.go", "a nested module is not part of the chapter")
	assert.Contains(t, string(made), "--- /dev/null\n+++ b/02-second/extra.html\n@@ -0,0 +1 @@\n+<p>new</p>\n")
}
