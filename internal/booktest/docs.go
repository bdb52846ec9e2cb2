package booktest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A docs page marks each fenced code block that must stay true with an HTML
// comment on the line just before the opening fence:
//
//	<!-- quote: 03-handshake/main.go acceptKey -->   code cut from a chapter's file
//	<!-- output: 03-handshake refusals -->          what a program printed, written by a test
//
// A quote names a Go declaration (a func, a method as Type.Method, a type, or
// the const/var group holding a name), or, in any file, a region between two
// marker lines that contain "region NAME" and "endregion NAME".
// An output names the test-made transcript by chapter and name.
type Block struct {
	Kind    string // "quote" or "output"
	Arg     string // what the marker names
	Line    int    // line number of the marker, for error messages
	start   int    // byte offset of the block's content in the page
	end     int    // byte offset just past the content (at the closing fence)
	Content string
}

var markerRE = regexp.MustCompile(`^<!-- (quote|output): (.+?) -->$`)

// Blocks finds every marked block in a markdown page.
func Blocks(page string) ([]Block, error) {
	var blocks []Block
	lines := strings.SplitAfter(page, "\n")
	offset := 0
	for i := 0; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], "\r\n")
		offset += len(lines[i])
		m := markerRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			return nil, fmt.Errorf("line %d: marker %q is not followed by a ``` fence", i+1, line)
		}
		i++
		offset += len(lines[i])
		b := Block{Kind: m[1], Arg: m[2], Line: i, start: offset}
		for i++; ; i++ {
			if i >= len(lines) {
				return nil, fmt.Errorf("line %d: block opened here is never closed", b.Line)
			}
			if strings.TrimRight(lines[i], "\r\n") == "```" {
				break
			}
			offset += len(lines[i])
		}
		b.end = offset
		b.Content = page[b.start:b.end]
		offset += len(lines[i])
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// Replace returns page with block b's content swapped for content.
func Replace(page string, b Block, content string) string {
	return page[:b.start] + content + page[b.end:]
}

// Quote cuts what a quote marker names out of a file under root.
// arg is "path/to/file.go Name" or "path/to/file region-name".
func Quote(root, arg string) (string, error) {
	file, name, ok := strings.Cut(arg, " ")
	if !ok {
		return "", fmt.Errorf("quote %q: want FILE NAME", arg)
	}
	src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	if err != nil {
		return "", err
	}
	if text, found := regionText(string(src), name); found {
		return text, nil
	}
	if strings.HasSuffix(file, ".go") {
		text, err := declText(src, name)
		if err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		return text, nil
	}
	return "", fmt.Errorf("%s: no region %q", file, name)
}

// regionText returns the lines between the "region NAME" and
// "endregion NAME" markers, without the markers.
func regionText(src, name string) (string, bool) {
	var out strings.Builder
	inside := false
	for _, line := range strings.SplitAfter(src, "\n") {
		switch {
		case strings.Contains(line, "endregion "+name) && strings.HasSuffix(strings.TrimRight(line, "\n -*/>"), name):
			return out.String(), inside
		case strings.Contains(line, "region "+name) && strings.HasSuffix(strings.TrimRight(line, "\n -*/>"), name):
			inside = true
		case inside:
			out.WriteString(line)
		}
	}
	return "", false
}

// declText returns the source of the named top-level declaration, with its
// doc comment.
func declText(src []byte, name string) (string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, parser.ParseComments)
	if err != nil {
		return "", err
	}
	for _, decl := range f.Decls {
		if !declares(decl, name) {
			continue
		}
		start := decl.Pos()
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if d.Doc != nil {
				start = d.Doc.Pos()
			}
		case *ast.GenDecl:
			if d.Doc != nil {
				start = d.Doc.Pos()
			}
		}
		from, to := fset.Position(start).Offset, fset.Position(decl.End()).Offset
		return string(src[from:to]) + "\n", nil
	}
	return "", fmt.Errorf("no declaration named %q", name)
}

func declares(decl ast.Decl, name string) bool {
	switch d := decl.(type) {
	case *ast.FuncDecl:
		if d.Recv != nil && len(d.Recv.List) == 1 {
			recv := d.Recv.List[0].Type
			if star, ok := recv.(*ast.StarExpr); ok {
				recv = star.X
			}
			if id, ok := recv.(*ast.Ident); ok {
				return id.Name+"."+d.Name.Name == name
			}
			return false
		}
		return d.Name.Name == name
	case *ast.GenDecl:
		for _, spec := range d.Specs {
			switch s := spec.(type) {
			case *ast.TypeSpec:
				if s.Name.Name == name {
					return true
				}
			case *ast.ValueSpec:
				for _, id := range s.Names {
					if id.Name == name {
						return true
					}
				}
			}
		}
	}
	return false
}

// Transcript checks that the docs page doc (a path from the repository's
// root, like "docs/02-parse-headers.md") shows got in its block marked
// <!-- output: NAME -->, and so does its Chinese page (docs/zh/...). With
// -update it rewrites the blocks instead.
func Transcript(t testing.TB, doc, name, got string) {
	t.Helper()
	if !strings.HasSuffix(got, "\n") {
		got += "\n"
	}
	transcript(t, doc, name, got)
	// The Chinese edition shows the same transcript, in the page of the
	// same name under docs/zh.
	dir, file := filepath.Split(filepath.FromSlash(doc))
	transcript(t, filepath.ToSlash(filepath.Join(dir, "zh", file)), name, got)
}

func transcript(t testing.TB, doc, name, got string) {
	t.Helper()
	path := filepath.Join(RepoRoot(t), filepath.FromSlash(doc))
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("transcript %q: %v", name, err)
	}
	page := string(raw)
	blocks, err := Blocks(page)
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	for _, b := range blocks {
		if b.Kind != "output" || b.Arg != name {
			continue
		}
		if b.Content == got {
			return
		}
		if *Update {
			if err := os.WriteFile(path, []byte(Replace(page, b, got)), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: rewrote output %q", doc, name)
			return
		}
		t.Fatalf("%s line %d: output %q is stale (run the tests with -update to rewrite it)\n--- docs show:\n%s--- the program printed:\n%s", doc, b.Line, name, b.Content, got)
	}
	t.Fatalf("%s has no block marked <!-- output: %s -->", doc, name)
}
