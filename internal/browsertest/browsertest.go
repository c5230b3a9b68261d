// Package browsertest starts a real headless Chromium (Debian's `chromium` package, installed by
// `make browser-deps`, which `make test` runs) for tests of the pages the handler serves, and drives
// it over the DevTools protocol with chromedp.
//
// Start skips the test when no Chromium is installed, except under CI (CI=true), where a missing
// browser must not pass as green: the test fails. The browser runs with the flags this sandbox needs
// (no sandbox as root, no GPU, no background networking: the machine's network is closed and
// Chromium's own connections would otherwise be refused many at a time) and a fresh profile.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Paths where Chromium is looked for, in order; CHROMIUM names another.
var candidates = []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"}

// Executable returns the Chromium to use, or "" when none is installed.
func Executable() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

// Start launches a headless Chromium for t and returns a chromedp context for one tab, cancelled (and
// the browser stopped) when the test ends. timeout bounds the whole test's browser work.
func Start(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	exe := Executable()
	if exe == "" {
		msg := "no Chromium found (looked at CHROMIUM and " + fmt.Sprint(candidates) + "): run `make browser-deps`"
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	// Start the browser now, so a launch failure is reported as such and not as the first action's.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium %s: %v", exe, err)
	}
	return ctx
}

// Screenshot saves a full-page PNG of the current page as a test artifact: under
// $TEST_ARTIFACTS_DIR when set (CI keeps that folder), else under the test's temporary directory.
// It returns the file's path.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("TEST_ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot saved to %s", path)
	return path
}
