package bookcheck

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

// The Chinese edition, docs/zh, has one page for every page of docs/, with
// the same name. Its prose is its own, but its shape is the English page's:
// the same headings at the same levels, the same code blocks byte for byte
// (quotes, transcripts, commands and output), the same quote and output
// markers and the same images, all in the same order. A change to one
// language that forgets the other fails TestChineseEditionMatchesEnglish.
// Quotes, transcripts and links in docs/zh are checked like the English
// ones: TestQuotesMatchTheCode and the link tests walk docs/zh too, and
// booktest.Transcript checks a transcript in both pages.

// part is one piece of a page's shape: a heading (its level only: the text
// is translated), a marker, a fenced block or an image.
type part struct {
	kind string // "heading", "marker", "block" or "image"
	key  string // the level, the marker line, the block's lines or the image's path
	line int    // where it is, for the report
	text string // a heading's text, to say which one
}

func (p part) String() string {
	switch p.kind {
	case "heading":
		return fmt.Sprintf("line %d: %s %s", p.line, p.key, p.text)
	case "block":
		first, _, _ := strings.Cut(p.key, "\n")
		return fmt.Sprintf("line %d: code block starting %q", p.line, first)
	}
	return fmt.Sprintf("line %d: %s %s", p.line, p.kind, p.key)
}

var (
	fenceRE = regexp.MustCompile("^( *)(```|~~~)")
	imageRE = regexp.MustCompile(`!\[[^\]]*\]\(([^)\s]+)`)
)

// shape returns the parts of a page in order. Image paths are taken as
// seen from docs/: a Chinese page's ../img/x.png is img/x.png.
func shape(page string, inZh bool) []part {
	var parts []part
	lines := strings.Split(page, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			start := i
			var body []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != m[2]; i++ {
				body = append(body, lines[i])
			}
			parts = append(parts, part{kind: "block", key: strings.TrimSpace(line) + "\n" + strings.Join(body, "\n"), line: start + 1})
			continue
		}
		if zhMarkerRE.MatchString(line) {
			parts = append(parts, part{kind: "marker", key: line, line: i + 1})
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil {
			level := line[:strings.IndexByte(line, ' ')]
			parts = append(parts, part{kind: "heading", key: level, line: i + 1, text: m[1]})
			continue
		}
		for _, m := range imageRE.FindAllStringSubmatch(line, -1) {
			target := m[1]
			if inZh && !strings.Contains(target, "://") {
				target = path.Clean(path.Join("zh", target))
			}
			parts = append(parts, part{kind: "image", key: target, line: i + 1})
		}
	}
	return parts
}

var zhMarkerRE = regexp.MustCompile(`^<!-- (quote|output): .+ -->$`)

// compareShapes lists where the Chinese page's shape departs from the
// English page's, first difference first.
func compareShapes(en, zh []part) []string {
	var diffs []string
	for i := 0; i < max(len(en), len(zh)); i++ {
		switch {
		case i >= len(en):
			diffs = append(diffs, fmt.Sprintf("the Chinese page has more: %s", zh[i]))
		case i >= len(zh):
			diffs = append(diffs, fmt.Sprintf("the Chinese page lacks: %s", en[i]))
		case en[i].kind != zh[i].kind || en[i].key != zh[i].key:
			diffs = append(diffs, fmt.Sprintf("English %s, but Chinese %s", en[i], zh[i]))
		default:
			continue
		}
		break // after the first difference, the rest would only repeat it
	}
	return diffs
}

// englishPages returns the names of the markdown pages in docs/.
func englishPages(t *testing.T, root string) []string {
	matches, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	require.NotEmpty(t, matches)
	var names []string
	for _, m := range matches {
		names = append(names, filepath.Base(m))
	}
	return names
}

func TestChineseEditionMatchesEnglish(t *testing.T) {
	root := booktest.RepoRoot(t)
	names := englishPages(t, root)
	for _, name := range names {
		en, err := os.ReadFile(filepath.Join(root, "docs", name))
		require.NoError(t, err)
		zh, err := os.ReadFile(filepath.Join(root, "docs", "zh", name))
		if !assert.NoError(t, err, "docs/%s has no Chinese page docs/zh/%s", name, name) {
			continue
		}
		for _, d := range compareShapes(shape(string(en), false), shape(string(zh), true)) {
			t.Errorf("docs/zh/%s differs from docs/%s in shape: %s", name, name, d)
		}
	}
	zhPages, err := filepath.Glob(filepath.Join(root, "docs", "zh", "*.md"))
	require.NoError(t, err)
	assert.Len(t, zhPages, len(names), "docs/zh should hold exactly one page per page of docs/")
}

// Every page links to its other language on its first line, and the README
// says where the Chinese edition is.
func TestLanguageLinks(t *testing.T) {
	root := booktest.RepoRoot(t)
	for _, name := range englishPages(t, root) {
		for _, page := range []struct{ file, link string }{
			{filepath.Join(root, "docs", name), "[中文](zh/" + name + ")"},
			{filepath.Join(root, "docs", "zh", name), "[English](../" + name + ")"},
		} {
			raw, err := os.ReadFile(page.file)
			if !assert.NoError(t, err) {
				continue
			}
			first, _, _ := strings.Cut(string(raw), "\n")
			rel, _ := filepath.Rel(root, page.file)
			assert.Contains(t, first, page.link, "the first line of %s should link to the page in the other language", rel)
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	assert.Contains(t, string(readme), "(docs/zh/README.md)", "README.md should link to the Chinese edition")
}

// The shape check must be able to fail: a page with a section or a quote
// removed, or a code block changed, is reported.
func TestShapeCheckNoticesAMissingSectionOrQuote(t *testing.T) {
	en := "[← Contents](README.md) · [中文](zh/p.md)\n\n# Title\n\nText.\n\n## One\n\n" +
		"<!-- quote: 06-full-server/frame.go mask -->\n```go\nfunc mask() {}\n```\n\n![a frame](img/x.png)\n\n## Two\n\n```sh\ngo run ./01-raw-socket\n```\n"
	zh := "[← 目录](README.md) · [English](../p.md)\n\n# 标题\n\n正文。\n\n## 一\n\n" +
		"<!-- quote: 06-full-server/frame.go mask -->\n```go\nfunc mask() {}\n```\n\n![一帧](../img/x.png)\n\n## 二\n\n```sh\ngo run ./01-raw-socket\n```\n"
	assert.Empty(t, compareShapes(shape(en, false), shape(zh, true)), "a faithful translation has the same shape")

	noSection := strings.Replace(zh, "## 二\n\n", "", 1)
	assert.NotEmpty(t, compareShapes(shape(en, false), shape(noSection, true)), "a section removed from the Chinese page")

	noQuote := strings.Replace(zh, "<!-- quote: 06-full-server/frame.go mask -->\n```go\nfunc mask() {}\n```\n", "", 1)
	assert.NotEmpty(t, compareShapes(shape(en, false), shape(noQuote, true)), "a quote removed from the Chinese page")

	changed := strings.Replace(zh, "go run ./01-raw-socket", "go run ./02-parse-headers", 1)
	assert.NotEmpty(t, compareShapes(shape(en, false), shape(changed, true)), "a command changed in the Chinese page")

	wrongImage := strings.Replace(zh, "../img/x.png", "../img/y.png", 1)
	assert.NotEmpty(t, compareShapes(shape(en, false), shape(wrongImage, true)), "another image in the Chinese page")

	enOnly := strings.Replace(en, "## One\n\n", "## One\n\n### More\n\n", 1)
	assert.NotEmpty(t, compareShapes(shape(enOnly, false), shape(zh, true)), "a section added to the English page only")
}
