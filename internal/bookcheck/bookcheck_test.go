// Package bookcheck holds the checks that keep the docs true to the code:
// every quoted block matches the file it quotes, every relative link and
// image resolves (and so does the heading a link points to), and the diffs
// between chapters in docs/diffs are current. Terminal transcripts are
// checked by the chapters' own tests, which produce them.
package bookcheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

// pages returns README.md and every markdown page under docs/.
func pages(t *testing.T, root string) []string {
	files := []string{filepath.Join(root, "README.md")}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return err
	})
	require.NoError(t, err)
	return files
}

func TestQuotesMatchTheCode(t *testing.T) {
	root := booktest.RepoRoot(t)
	for _, file := range pages(t, root) {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		page := string(raw)
		blocks, err := booktest.Blocks(page)
		require.NoError(t, err, file)
		// Walk backwards so that rewriting a block keeps the earlier offsets valid.
		changed := false
		for i := len(blocks) - 1; i >= 0; i-- {
			b := blocks[i]
			if b.Kind != "quote" {
				continue
			}
			want, err := booktest.Quote(root, b.Arg)
			if !assert.NoError(t, err, "%s line %d", file, b.Line) || want == b.Content {
				continue
			}
			if *booktest.Update {
				page, changed = booktest.Replace(page, b, want), true
				continue
			}
			t.Errorf("%s line %d: quote of %q is stale (run go test ./internal/bookcheck -update)\n--- docs show:\n%s--- the code is:\n%s",
				file, b.Line, b.Arg, b.Content, want)
		}
		if changed {
			require.NoError(t, os.WriteFile(file, []byte(page), 0o644))
		}
	}
}

// The quote check must be able to fail: change one line of a quoted
// function and it reports the difference.
func TestQuoteCheckNoticesAChangedLine(t *testing.T) {
	dir := t.TempDir()
	src := "package p\n\n// double doubles.\nfunc double(n int) int {\n\treturn 2 * n\n}\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644))
	quoted, err := booktest.Quote(dir, "p.go double")
	require.NoError(t, err)
	assert.Equal(t, "// double doubles.\nfunc double(n int) int {\n\treturn 2 * n\n}\n", quoted)

	page := "text\n<!-- quote: p.go double -->\n```go\n" + quoted + "```\n"
	blocks, err := booktest.Blocks(page)
	require.NoError(t, err)
	require.Len(t, blocks, 1)
	assert.Equal(t, quoted, blocks[0].Content)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.go"), []byte(strings.Replace(src, "2 * n", "n + n", 1)), 0o644))
	changed, err := booktest.Quote(dir, "p.go double")
	require.NoError(t, err)
	assert.NotEqual(t, blocks[0].Content, changed)
}

func TestQuoteFindsRegionsMethodsAndGroups(t *testing.T) {
	dir := t.TempDir()
	src := "package p\n\nconst (\n\ta = 1\n\tb = 2\n)\n\ntype T struct{}\n\n// M is a method.\nfunc (t *T) M() {}\n\n// region inner\nvar x = 1\n// endregion inner\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644))
	for arg, want := range map[string]string{
		"p.go b":     "const (\n\ta = 1\n\tb = 2\n)\n",
		"p.go T.M":   "// M is a method.\nfunc (t *T) M() {}\n",
		"p.go inner": "var x = 1\n",
	} {
		got, err := booktest.Quote(dir, arg)
		require.NoError(t, err, arg)
		assert.Equal(t, want, got, arg)
	}
	_, err := booktest.Quote(dir, "p.go missing")
	assert.Error(t, err)
}

var linkRE = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

func TestRelativeLinksResolve(t *testing.T) {
	root := booktest.RepoRoot(t)
	for _, file := range pages(t, root) {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, m := range linkRE.FindAllStringSubmatch(string(raw), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "#") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			path := filepath.Join(filepath.Dir(file), filepath.FromSlash(target))
			_, err := os.Stat(path)
			rel, _ := filepath.Rel(root, file)
			assert.NoError(t, err, "%s links to %s, which does not exist", rel, m[1])
		}
	}
}
