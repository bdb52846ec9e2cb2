package bookcheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"wsbook/internal/booktest"
)

// TestRelativeLinksResolve checks that a linked page exists; this test
// checks the part after the #, as in glossary.md#masking-key: the page must
// have a heading that GitHub turns into that anchor.
func TestLinkedHeadingsExist(t *testing.T) {
	root := booktest.RepoRoot(t)
	anchorsOf := map[string]map[string]bool{}
	for _, file := range pages(t, root) {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		rel, _ := filepath.Rel(root, file)
		for _, m := range linkRE.FindAllStringSubmatch(string(raw), -1) {
			target, fragment, ok := strings.Cut(m[1], "#")
			if !ok || strings.Contains(target, "://") || fragment == "" {
				continue
			}
			page := file
			if target != "" {
				page = filepath.Join(filepath.Dir(file), filepath.FromSlash(target))
			}
			if !strings.HasSuffix(page, ".md") {
				continue
			}
			anchors, seen := anchorsOf[page]
			if !seen {
				text, err := os.ReadFile(page)
				if err != nil {
					continue // TestRelativeLinksResolve reports it
				}
				anchors = headingAnchors(string(text))
				anchorsOf[page] = anchors
			}
			assert.True(t, anchors[fragment], "%s links to %s, but that page has no heading with the anchor #%s", rel, m[1], fragment)
		}
	}
}

var (
	headingRE    = regexp.MustCompile(`^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$`)
	inlineLinkRE = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlAnchorRE = regexp.MustCompile(`<a (?:id|name)="([^"]+)"`)
)

// headingAnchors returns the anchors of a markdown page's headings, made as
// GitHub makes them: the heading's text in lower case, without punctuation,
// spaces turned into hyphens, and -1, -2 ... added to repeats. Lines in
// fenced code blocks are not headings, whatever they start with.
func headingAnchors(page string) map[string]bool {
	anchors := map[string]bool{}
	count := map[string]int{}
	inFence := false
	for _, line := range strings.Split(page, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			inFence = !inFence
			continue
		}
		for _, m := range htmlAnchorRE.FindAllStringSubmatch(line, -1) {
			anchors[m[1]] = true
		}
		m := headingRE.FindStringSubmatch(line)
		if inFence || m == nil {
			continue
		}
		slug := slugify(inlineLinkRE.ReplaceAllString(m[1], "$1"))
		if n := count[slug]; n > 0 {
			anchors[slug+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[slug] = true
		}
		count[slug]++
	}
	return anchors
}

func slugify(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestHeadingAnchorsAreGitHubs(t *testing.T) {
	page := "# 04 · Reading frames\n\n## The frame, bit by bit\n\n### One `Read` is not one request\n\n" +
		"```python\n# not a heading\n```\n\n## Things to try\n\n## Things to try\n\n## See [RFC 6455](https://example.com) §5.2\n"
	got := headingAnchors(page)
	for _, want := range []string{"04--reading-frames", "the-frame-bit-by-bit", "one-read-is-not-one-request", "things-to-try", "things-to-try-1", "see-rfc-6455-52"} {
		assert.True(t, got[want], "missing %q in %v", want, got)
	}
	assert.False(t, got["not-a-heading"])
}
