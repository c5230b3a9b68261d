package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The helper itself: a page whose script changes the DOM after a click must be seen changed, so the
// browser really runs JavaScript and takes input.
func TestChromiumRunsScriptAndClicks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>t</title><button id="b">go</button><p id="out">before</p>
<script>document.getElementById("b").addEventListener("click", () => {
  document.getElementById("out").textContent = "clicked " + navigator.userAgent.includes("Headless");
});</script>`)
	}))
	defer srv.Close()
	ctx := Start(t, 60*time.Second)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL),
		chromedp.Click(chromedp.ID("b")),
		chromedp.WaitVisible(chromedp.ID("out")),
	); err != nil {
		t.Fatal(err)
	}
	out, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("out")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "clicked") {
		t.Fatalf("text after click = %q, want it to start with %q", out, "clicked")
	}
	if p := Screenshot(t, ctx, "browsertest.png"); !strings.HasSuffix(p, ".png") {
		t.Fatalf("screenshot path %q", p)
	}
}
