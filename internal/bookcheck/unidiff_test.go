package bookcheck

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file is a small unified diff, the format of `diff -u` and `git diff`,
// written with the standard library only so that the chapter diffs in
// docs/diffs can be made and checked by `go test` on any machine.
//
// The line matching is Myers' algorithm ("An O(ND) Difference Algorithm and
// Its Variations", 1986): it finds a shortest edit script, the fewest lines
// deleted plus inserted that turn one file into the other.

// edit is one line of an edit script: a line both files share, or a line
// only the old (delete) or the new (insert) file has. aPos and bPos are the
// 0-based positions in the old and new file where the edit happens.
type edit struct {
	kind       byte // ' ' shared, '-' deleted, '+' inserted
	aPos, bPos int
	text       string // the line, with its "\n" if it has one
}

// splitLines cuts text into lines that keep their "\n", so that a last line
// without one differs from the same line with one.
func splitLines(text string) []string {
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// editScript returns a shortest edit script from a to b. Within each run of
// changes the deletions come before the insertions, as diff prints them.
func editScript(a, b []string) []edit {
	// Lines the files share at the start and at the end need no search.
	prefix := 0
	for prefix < len(a) && prefix < len(b) && a[prefix] == b[prefix] {
		prefix++
	}
	suffix := 0
	for suffix < len(a)-prefix && suffix < len(b)-prefix && a[len(a)-1-suffix] == b[len(b)-1-suffix] {
		suffix++
	}

	var script []edit
	for i := range prefix {
		script = append(script, edit{' ', i, i, a[i]})
	}
	for _, e := range myers(a[prefix:len(a)-suffix], b[prefix:len(b)-suffix]) {
		e.aPos += prefix
		e.bPos += prefix
		script = append(script, e)
	}
	for i := suffix; i > 0; i-- {
		script = append(script, edit{' ', len(a) - i, len(b) - i, a[len(a)-i]})
	}
	return deletionsFirst(script)
}

// myers finds a shortest edit script from a to b. In the edit graph, moving
// right deletes a line of a, moving down inserts a line of b, and a diagonal
// keeps a shared line for free. Round d finds, for every diagonal k = x - y,
// the furthest point reachable with d deletions and insertions; the first
// round that reaches the bottom-right corner has found the shortest script,
// and the rounds' results, kept in trace, lead back to the start.
func myers(a, b []string) []edit {
	n, m := len(a), len(b)
	// v[k+off] is the furthest x reached on diagonal k in the current round.
	off := n + m + 1
	v := make([]int, 2*off+1)
	var trace [][]int // trace[d][k+d] is v[k] after round d
	for d := 0; d <= n+m; d++ {
		done := false
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1] // down from diagonal k+1: an insertion
			} else {
				x = v[off+k-1] + 1 // right from diagonal k-1: a deletion
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = x
			done = done || x >= n && y >= m
		}
		trace = append(trace, append([]int(nil), v[off-d:off+d+1]...))
		if done {
			return backtrack(a, b, trace)
		}
	}
	panic("unreachable: n+m rounds always reach the corner")
}

// backtrack walks from the bottom-right corner back to the start through
// the rounds' furthest points, and returns the edits in order.
func backtrack(a, b []string, trace [][]int) []edit {
	x, y := len(a), len(b)
	var reversed []edit
	for d := len(trace) - 1; d >= 0; d-- {
		k := x - y
		prevX, prevY := 0, 0
		if d > 0 {
			prev := trace[d-1] // prev[k+d-1] is v[k] after round d-1
			at := func(k int) int { return prev[k+d-1] }
			prevK := k - 1
			if k == -d || (k != d && at(k-1) < at(k+1)) {
				prevK = k + 1
			}
			prevX = at(prevK)
			prevY = prevX - prevK
		}
		// The diagonal (shared lines) that ended this round.
		for x > prevX && y > prevY {
			x, y = x-1, y-1
			reversed = append(reversed, edit{' ', x, y, a[x]})
		}
		if d == 0 {
			break
		}
		if x == prevX { // the move down into the diagonal: an insertion
			y--
			reversed = append(reversed, edit{'+', x, y, b[y]})
		} else { // the move right: a deletion
			x--
			reversed = append(reversed, edit{'-', x, y, a[x]})
		}
	}
	script := make([]edit, len(reversed))
	for i, e := range reversed {
		script[len(reversed)-1-i] = e
	}
	return script
}

// deletionsFirst reorders each run of changes so that its deletions come
// before its insertions, and fixes up the positions to match.
func deletionsFirst(script []edit) []edit {
	out := make([]edit, 0, len(script))
	for i := 0; i < len(script); {
		if script[i].kind == ' ' {
			out = append(out, script[i])
			i++
			continue
		}
		j := i
		for j < len(script) && script[j].kind != ' ' {
			j++
		}
		aPos, bPos := script[i].aPos, script[i].bPos
		var inserts []edit
		for _, e := range script[i:j] {
			if e.kind == '-' {
				out = append(out, edit{'-', e.aPos, bPos, e.text})
				aPos = e.aPos + 1
			} else {
				inserts = append(inserts, e)
			}
		}
		for _, e := range inserts {
			out = append(out, edit{'+', aPos, e.bPos, e.text})
		}
		i = j
	}
	return out
}

// unifiedDiff returns the hunks of a unified diff from oldText to newText,
// with context shared lines around each change (diff's default is 3), or ""
// if the texts are equal. The file header (--- and +++) is the caller's.
// For Go files, each hunk header names the declaration it is in, as git
// does: the nearest line above the hunk that starts with a letter.
func unifiedDiff(oldText, newText string, context int, goSource bool) string {
	if oldText == newText {
		return ""
	}
	a, b := splitLines(oldText), splitLines(newText)
	script := editScript(a, b)

	var out strings.Builder
	for i := 0; i < len(script); {
		for i < len(script) && script[i].kind == ' ' {
			i++
		}
		if i == len(script) {
			break
		}
		// A hunk runs from context lines before this change to context
		// lines after the last change that is at most 2*context shared
		// lines away from the one before it.
		start := max(i-context, 0)
		end := i
		for {
			for end < len(script) && script[end].kind != ' ' {
				end++
			}
			next := end
			for next < len(script) && script[next].kind == ' ' {
				next++
			}
			if next < len(script) && next-end <= 2*context {
				end = next
				continue
			}
			end = min(end+context, len(script))
			break
		}
		writeHunk(&out, a, script[start:end], goSource)
		i = end
	}
	return out.String()
}

func writeHunk(out *strings.Builder, a []string, hunk []edit, goSource bool) {
	aCount, bCount := 0, 0
	for _, e := range hunk {
		if e.kind != '+' {
			aCount++
		}
		if e.kind != '-' {
			bCount++
		}
	}
	first := hunk[0]
	fmt.Fprintf(out, "@@ -%s +%s @@", hunkRange(first.aPos, aCount), hunkRange(first.bPos, bCount))
	if goSource {
		for i := first.aPos - 1; i >= 0; i-- {
			if c := a[i][0]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' {
				fmt.Fprintf(out, " %s", strings.TrimRight(a[i], " \t\r\n"))
				break
			}
		}
	}
	out.WriteString("\n")
	for _, e := range hunk {
		out.WriteByte(e.kind)
		out.WriteString(e.text)
		if !strings.HasSuffix(e.text, "\n") {
			out.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

// hunkRange formats a hunk's start and length as diff does: 1-based, the
// length left out when it is 1, and an empty range placed after the line
// that precedes it (so "0,0" for an empty file).
func hunkRange(pos, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", pos)
	case 1:
		return fmt.Sprintf("%d", pos+1)
	default:
		return fmt.Sprintf("%d,%d", pos+1, count)
	}
}

func TestUnifiedDiffExamples(t *testing.T) {
	ten := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"
	for _, c := range []struct {
		name, old, new, want string
	}{
		{"equal texts", "a\nb\n", "a\nb\n", ""},
		{"a new file", "", "a\nb\n", "@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"a removed file", "a\nb\n", "", "@@ -1,2 +0,0 @@\n-a\n-b\n"},
		{"one line changed", "a\nb\nc\n", "a\nB\nc\n", "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"a line added at the end", ten, ten + "11\n", "@@ -8,3 +8,4 @@\n 8\n 9\n 10\n+11\n"},
		{"a line removed at the start", ten, strings.TrimPrefix(ten, "1\n"), "@@ -1,4 +1,3 @@\n-1\n 2\n 3\n 4\n"},
		{
			"changes 6 lines apart share a hunk", ten, strings.NewReplacer("2\n", "two\n", "9\n", "nine\n").Replace(ten),
			"@@ -1,10 +1,10 @@\n 1\n-2\n+two\n 3\n 4\n 5\n 6\n 7\n 8\n-9\n+nine\n 10\n",
		},
		{
			"changes 7 lines apart make two hunks", ten + "11\n", strings.NewReplacer("2\n", "two\n", "10\n", "ten\n").Replace(ten + "11\n"),
			"@@ -1,5 +1,5 @@\n 1\n-2\n+two\n 3\n 4\n 5\n@@ -7,5 +7,5 @@\n 7\n 8\n 9\n-10\n+ten\n 11\n",
		},
		{
			"deletions print before insertions", "a\nb\nc\nd\n", "a\nx\ny\nd\n",
			"@@ -1,4 +1,4 @@\n a\n-b\n-c\n+x\n+y\n d\n",
		},
		{
			"a last line without a newline", "a\nb", "a\nb\n",
			"@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n",
		},
	} {
		assert.Equal(t, c.want, unifiedDiff(c.old, c.new, 3, false), c.name)
	}
}

func TestUnifiedDiffNamesTheGoDeclaration(t *testing.T) {
	old := "package p\n\n// f does things.\nfunc f() {\n\ta()\n\tb()\n\tc()\n\td()\n\te()\n}\n"
	got := unifiedDiff(old, strings.Replace(old, "\te()", "\tE()", 1), 3, true)
	assert.Equal(t, "@@ -6,5 +6,5 @@ func f() {\n \tb()\n \tc()\n \td()\n-\te()\n+\tE()\n }\n", got)
}

// Random texts from a small alphabet of lines (so that many lines repeat,
// which is what makes diffs hard): the hunks must turn the old text into
// the new one, and change as few lines as possible.
func TestUnifiedDiffIsCorrectAndMinimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(6455, 13))
	randomText := func() string {
		var b strings.Builder
		for range rng.IntN(30) {
			fmt.Fprintf(&b, "%c\n", 'a'+rng.IntN(5))
		}
		return b.String()
	}
	for i := range 2000 {
		old, new := randomText(), randomText()
		if i%3 == 0 { // a few edits of old, the usual case
			lines := splitLines(old)
			for range rng.IntN(4) {
				at := rng.IntN(len(lines) + 1)
				lines = slices.Insert(lines, at, "new\n")
			}
			new = strings.Join(lines, "")
		}
		context := rng.IntN(4)
		hunks := unifiedDiff(old, new, context, false)
		require.Equal(t, new, applyHunks(t, old, hunks), "old:\n%s\nnew:\n%s\ndiff:\n%s", old, new, hunks)

		changed := 0
		for _, line := range splitLines(hunks) {
			if line[0] == '+' || line[0] == '-' {
				changed++
			}
		}
		a, b := splitLines(old), splitLines(new)
		require.Equal(t, len(a)+len(b)-2*lcsLength(a, b), changed, "not minimal:\n%s", hunks)
	}
}

// applyHunks applies a unified diff's hunks to old, checking every line the
// hunk says is there, as patch would.
func applyHunks(t *testing.T, old, hunks string) string {
	a := splitLines(old)
	var out []string
	next := 0 // the next line of a not yet copied
	for _, line := range splitLines(hunks) {
		switch line[0] {
		case '@':
			var aStart, aCount int
			spec := strings.Fields(line)[1] // -start,count or -start
			if n, _ := fmt.Sscanf(spec, "-%d,%d", &aStart, &aCount); n == 1 {
				aCount = 1
			}
			if aCount > 0 {
				aStart-- // to a 0-based index
			}
			require.GreaterOrEqual(t, aStart, next, "hunks overlap or go backwards")
			out = append(out, a[next:aStart]...)
			next = aStart
		case ' ', '-':
			require.Less(t, next, len(a))
			require.Equal(t, a[next], line[1:], "the hunk's old line is not in the old text")
			if line[0] == ' ' {
				out = append(out, line[1:])
			}
			next++
		case '+':
			out = append(out, line[1:])
		default:
			t.Fatalf("unexpected diff line %q", line)
		}
	}
	return strings.Join(append(out, a[next:]...), "")
}

// lcsLength is the length of the longest common subsequence of a and b, by
// the textbook dynamic program: an independent check on myers.
func lcsLength(a, b []string) int {
	row := make([]int, len(b)+1)
	for i := range a {
		prev := 0 // the previous row's value at j
		for j := range b {
			saved := row[j+1]
			if a[i] == b[j] {
				row[j+1] = prev + 1
			} else {
				row[j+1] = max(row[j+1], row[j])
			}
			prev = saved
		}
	}
	return row[len(b)]
}
