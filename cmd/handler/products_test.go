package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/pkg/catalog"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/settings"
)

func TestReadDocuments(t *testing.T) {
	tests := map[string]string{
		"json lines":       "{\"id\":\"a\"}\n\n{\"id\":\"b\"}\r\n{\"id\":\"c\"}",
		"json array":       " [ {\"id\":\"a\"}, {\"id\":\"b\"},\n{\"id\":\"c\"} ]\n",
		"array with a BOM": "\xEF\xBB\xBF[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"}]",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			err := readDocuments(strings.NewReader(in), func(n int, raw []byte) error {
				got = append(got, string(bytes.ReplaceAll(raw, []byte(" "), nil)))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{`{"id":"a"}`, `{"id":"b"}`, `{"id":"c"}`}, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
	if err := readDocuments(strings.NewReader(`[{"id":"a"},`), func(int, []byte) error { return nil }); err == nil {
		t.Fatal("truncated array accepted")
	}
}

// TestSeedProductsCommand runs `handler seed-products` on the embedded stores and checks what it
// recorded.
func TestSeedProductsCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "products.jsonl")
	lines := []string{
		`{"id":"p-1","name":"Hammer","category":"tools","price":19.99,"currency":"EUR","stock":4,"_etag":"\"e1\"","_ts":1764072000,"_lsn":10}`,
		`{"id":"p-2","name":"Rake","category":"garden","price":12,"currency":"EUR","stock":0}`,
		`{"id":"p-3","isDeleted":true}`,
		`{"id":"p-4","name":"Bad","category":"garden","price":"12","currency":"EUR","stock":0}`,
	}
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LOCAL_DATA_DIR": filepath.Join(dir, "data")}
	getenv := func(k string) string { return env[k] }
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"seed-products", "-file", file}, getenv, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr.String(), stdout.String())
	}
	out := stdout.String()
	for _, want := range []string{`"recorded":2`, `"deleted":1`, `"invalid":1`, `invalid product document skipped`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	db, err := embedded.Open(env["LOCAL_DATA_DIR"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	states, err := embedded.NewCollection[catalog.State](db, settings.ContainerPublishedState.Name)
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := states.Get(context.Background(), "p-1", "p-1")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Seeded || s.Product.Name != "Hammer" || s.Version.LSN != 10 {
		t.Fatalf("state %+v", s)
	}
	if states.Len() != 2 {
		t.Fatalf("%d states, want 2", states.Len())
	}
	// Nothing was published.
	if b, err := os.ReadFile(filepath.Join(env["LOCAL_DATA_DIR"], "events", settings.ProductTopic+".jsonl")); err == nil && len(b) > 0 {
		t.Fatalf("seeding published: %s", b)
	}
	if code := run(context.Background(), []string{"seed-products"}, getenv, &stdout, &stderr); code != 2 {
		t.Fatalf("without -file: exit %d", code)
	}
}
