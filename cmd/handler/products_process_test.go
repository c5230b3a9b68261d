package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/internal/standins"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
)

// productLines returns "subject type" for each event in the embedded ProductEventsTopic file.
func productLines(t *testing.T, dataDir string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir, "events", "ProductEventsTopic.jsonl"))
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct{ Subject, Type string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e.Subject+" "+e.Type)
	}
	return out
}

// productsFlow drives ProductChanges in the handler process p: the documented envelope (two new
// products and an invalid one), its redelivery, then an update.
func productsFlow(t *testing.T, p *proc, dataDir string) {
	t.Helper()
	body, err := os.ReadFile("../../docs/examples/product-changes.envelope.json")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // delivered twice: published once
		if res := p.invoke(t, "ProductChanges", body); res.Status != 200 {
			t.Fatalf("ProductChanges: %d %s\n%s", res.Status, res.Raw, p.out)
		}
	}
	want := "/products/tools/p-100 com.contoso.product.created,/products/tools/p-101 com.contoso.product.created"
	if got := strings.Join(productLines(t, dataDir), ","); got != want {
		t.Fatalf("published %s\nwant      %s\n%s", got, want, p.out)
	}
	doc := fmt.Sprintf(`{"id":"p-100","name":"Claw hammer","category":"tools","price":17.5,"currency":"EUR","stock":42,"_etag":"\"v2\"","_lsn":20,"_ts":%d}`, time.Now().Unix())
	env := hostsim.CosmosChanges("ProductChanges", "documents", []json.RawMessage{json.RawMessage(doc)}, &protocol.RetryContext{MaxRetryCount: 5})
	if res := p.invoke(t, "ProductChanges", env); res.Status != 200 {
		t.Fatalf("ProductChanges: %d %s\n%s", res.Status, res.Raw, p.out)
	}
	lines := productLines(t, dataDir)
	if got := strings.Join(lines[2:], ","); got != "/products/tools/p-100 com.contoso.product.updated,/products/tools/p-100 com.contoso.product.price.changed" {
		t.Fatalf("update published %s\n%s", got, p.out)
	}
}

func TestProductsEmbedded(t *testing.T) {
	dir := t.TempDir()
	p := start(t, "LOCAL_DATA_DIR="+dir)
	productsFlow(t, p, dir)
	p.stop()
	if recs := localDeadLetters(t, dir, "ProductChanges"); len(recs) == 0 {
		t.Fatal("invalid product not dead-lettered")
	}
}

// TestProductsAgainstCosmosStandin keeps the published state in the Cosmos DB adapter (the npm
// stand-in): catalog.State must pass the adapter's id and partition-key (/productId) checks.
func TestProductsAgainstCosmosStandin(t *testing.T) {
	cosmosEP := standins.Require(t, "STANDINS_COSMOS_HTTP_ENDPOINT")
	dir := t.TempDir()
	db := fmt.Sprintf("products%d", time.Now().UnixNano())
	p := start(t, "LOCAL_DATA_DIR="+dir,
		"CosmosDBConnection=AccountEndpoint="+cosmosEP+";AccountKey="+os.Getenv("STANDINS_COSMOS_KEY"),
		"COSMOS_DATABASE="+db, "COSMOS_CREATE_CONTAINERS=true")
	productsFlow(t, p, dir)
	if !strings.Contains(p.out.String(), `"cosmos":"azure`) {
		t.Fatalf("not running on the Cosmos DB adapter:\n%s", p.out)
	}
}
