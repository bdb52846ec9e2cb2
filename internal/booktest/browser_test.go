package booktest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func encodePNG(t *testing.T, img image.Image, level png.CompressionLevel) []byte {
	var buf bytes.Buffer
	require.NoError(t, (&png.Encoder{CompressionLevel: level}).Encode(&buf, img))
	return buf.Bytes()
}

// -update must not rewrite a screenshot whose pixels are unchanged, even
// when the new file's bytes differ; and it must write one that changed.
func TestWritePNGKeepsAnUnchangedPicture(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	fast, small := encodePNG(t, img, png.BestSpeed), encodePNG(t, img, png.BestCompression)
	require.NotEqual(t, fast, small, "the test needs two encodings of the same pixels")

	file := filepath.Join(t.TempDir(), "img", "page.png")
	wrote, err := writePNG(file, fast)
	require.NoError(t, err)
	assert.True(t, wrote, "a new file is written")

	wrote, err = writePNG(file, small)
	require.NoError(t, err)
	assert.False(t, wrote, "same pixels, other bytes: left alone")
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, fast, got)

	img.Set(3, 4, color.NRGBA{1, 2, 3, 255})
	changed := encodePNG(t, img, png.BestSpeed)
	wrote, err = writePNG(file, changed)
	require.NoError(t, err)
	assert.True(t, wrote, "one pixel changed: written")
	got, err = os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, changed, got)

	wrote, err = writePNG(file, encodePNG(t, image.NewNRGBA(image.Rect(0, 0, 40, 31)), png.BestSpeed))
	require.NoError(t, err)
	assert.True(t, wrote, "another size: written")

	_, err = writePNG(file, []byte("not a png"))
	assert.Error(t, err)
}

// Before a screenshot the page shows the docs' address instead of the
// test's port, and any value the test asks to replace; afterwards it is as
// it was.
func TestScreenshotShowsTheDocsAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><p id="url"></p><input id="field"><pre id="log">token x81z</pre>
<script>
document.getElementById("url").textContent = "ws://" + location.host + "/ws";
document.getElementById("field").value = location.host;
</script>`)
	}))
	defer srv.Close()
	ctx := Browser(t)
	Do(t, ctx, chromedp.Navigate(srv.URL))
	host := srv.Listener.Addr().String()
	page := func() string {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](
			`document.getElementById("url").textContent + " | " + document.getElementById("field").value + " | " + document.getElementById("log").textContent`))
		require.NoError(t, err)
		return got
	}
	before := page()
	require.Equal(t, "ws://"+host+"/ws | "+host+" | token x81z", before)

	for _, tt := range []struct {
		replace []string
		changed int
		want    string
	}{
		{nil, 3, "ws://127.0.0.1:8002/ws | 127.0.0.1:8002 | token x81z"},                      // one text, one field, the style that hides the caret
		{[]string{"x81z", "abc1"}, 4, "ws://127.0.0.1:8002/ws | 127.0.0.1:8002 | token abc1"}, // and a second text
	} {
		changed, err := chromedp.Run(ctx, chromedp.Evaluate[int](showForDocsScript(tt.replace)))
		require.NoError(t, err)
		assert.Equal(t, tt.changed, changed, "texts, fields and styles changed for %q", tt.replace)
		assert.Equal(t, tt.want, page())
		_, err = chromedp.Run(ctx, chromedp.Evaluate[int](undoShowForDocs))
		require.NoError(t, err)
		assert.Equal(t, before, page(), "the page put back after %q", tt.replace)
	}
	styles, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("style").length`))
	require.NoError(t, err)
	assert.Zero(t, styles)
}
