package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/catalog"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/deadletter/deadlettertest"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
	"github.com/contoso/eventpipeline/pkg/publish"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// productWorkload is the documented change mix (docs/product-events.md): a catalog of products is
// created first, then every change picks a product (uniformly) and one of these kinds.
var productMix = []struct {
	kind   string
	weight int
}{
	{"stock", 55},        // stock moves, stays on the same side of zero: publishes nothing
	{"availability", 10}, // stock crosses zero: updated + availability.changed
	{"price", 15},        // updated + price.changed
	{"text", 8},          // name, description or image: updated
	{"internal", 7},      // internal fields only: nothing
	{"delete", 3},        // soft delete (a deleted product's next change restores it: created)
	{"new", 2},           // a new product: created
}

type genProduct struct {
	id, name, category, currency, description string
	price                                     float64
	stock                                     int
	deleted                                   bool
	internal                                  int
}

// productChangeEnvelopes renders the workload as ProductChanges envelopes of batch documents each:
// first the creation of every product, then changes.
func productChangeEnvelopes(products, changes, batch int) (create, change [][]byte) {
	key := fmt.Sprint(products, changes, batch)
	prodEnvMu.Lock()
	defer prodEnvMu.Unlock()
	if e, ok := prodEnvCache[key]; ok {
		return e[0], e[1]
	}
	r := rand.New(rand.NewPCG(7, 11))
	cats := []string{"tools", "garden", "kitchen", "toys", "books", "electronics", "outdoor", "home"}
	var lsn int
	render := func(p *genProduct) json.RawMessage {
		lsn++
		m := map[string]any{"id": p.id, "internalScore": p.internal, "supplier": "acme",
			"_rid": "rid", "_self": "dbs/x/colls/y/docs/" + p.id + "/", "_etag": fmt.Sprintf(`"%08x-0000-0d00-0000-671abf110000"`, lsn),
			"_attachments": "attachments/", "_ts": 1764072000 + lsn/50, "_lsn": lsn}
		if p.deleted {
			m["isDeleted"], m["ttl"] = true, 86400
		} else {
			m["name"], m["category"], m["price"], m["currency"], m["stock"] = p.name, p.category, p.price, p.currency, p.stock
			m["description"], m["imageUrl"] = p.description, "https://img.contoso.example/"+p.id+".jpg"
		}
		b, _ := json.Marshal(m)
		return b
	}
	newProduct := func(i int) *genProduct {
		return &genProduct{id: fmt.Sprintf("p-%06d", i), name: fmt.Sprintf("Product %d", i), category: cats[i%len(cats)],
			currency: "EUR", price: float64(100+r.IntN(10000)) / 100, stock: 1 + r.IntN(100),
			description: "A fine product, made to last."}
	}
	envelopes := func(docs []json.RawMessage) [][]byte {
		var out [][]byte
		for i := 0; i < len(docs); i += batch {
			out = append(out, hostsim.CosmosChanges(handlers.FnProductChanges, "documents", docs[i:min(i+batch, len(docs))], &protocol.RetryContext{MaxRetryCount: 5}))
		}
		return out
	}
	all := make([]*genProduct, products)
	docs := make([]json.RawMessage, products)
	for i := range all {
		all[i] = newProduct(i)
		docs[i] = render(all[i])
	}
	create = envelopes(docs)
	total := 0
	for _, m := range productMix {
		total += m.weight
	}
	docs = docs[:0]
	for range changes {
		w := r.IntN(total)
		kind := ""
		for _, m := range productMix {
			if w < m.weight {
				kind = m.kind
				break
			}
			w -= m.weight
		}
		p := all[r.IntN(len(all))]
		switch {
		case kind == "new":
			p = newProduct(len(all))
			all = append(all, p)
		case p.deleted:
			p.deleted = false // restored
		case kind == "stock":
			if p.stock > 1 {
				p.stock = 1 + r.IntN(p.stock+20)
			} else if p.stock == 0 {
				p.stock = 0 // stays out of stock; an internal write
				p.internal++
			} else {
				p.stock += 1 + r.IntN(20)
			}
		case kind == "availability":
			if p.stock > 0 {
				p.stock = 0
			} else {
				p.stock = 1 + r.IntN(50)
			}
		case kind == "price":
			p.price = float64(100+r.IntN(10000)) / 100
		case kind == "text":
			p.name = fmt.Sprintf("%s v%d", p.name[:min(len(p.name), 20)], r.IntN(100))
		case kind == "internal":
			p.internal++
		case kind == "delete":
			p.deleted = true
		}
		docs = append(docs, render(p))
	}
	change = envelopes(docs)
	prodEnvCache[key] = [2][][]byte{create, change}
	return create, change
}

var (
	prodEnvMu    sync.Mutex
	prodEnvCache = map[string][2][][]byte{}
)

// encodingPublisher stands in for the Event Grid sender: it encodes each call's events as the
// request body would be (a JSON array of structured CloudEvents) and counts calls and bytes.
type encodingPublisher struct {
	calls, events, bytes int
}

func (p *encodingPublisher) Publish(ctx context.Context, evs []event.Event, lastAttempt bool) error {
	b, err := json.Marshal(evs)
	if err != nil {
		return err
	}
	p.calls++
	p.events += len(evs)
	p.bytes += len(b)
	return nil
}

type productBench struct {
	h      http.Handler
	db     *embedded.DB
	counts *encodingPublisher
	close  func()
}

// newProductBench builds the handler on embedded stores, publishing through an encodingPublisher
// (or the local JSON-lines publisher when jsonl is set), and applies the creation envelopes.
func newProductBench(b *testing.B, create [][]byte, jsonl bool) *productBench {
	dir := b.TempDir()
	db, err := embedded.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	states, err := embedded.NewCollection[catalog.State](db, settings.ContainerPublishedState.Name)
	if err != nil {
		b.Fatal(err)
	}
	pb := &productBench{db: db, counts: &encodingPublisher{}}
	closers := []func() error{db.Close}
	var pub catalog.Publisher = pb.counts
	if jsonl {
		sender, err := publish.NewJSONL(dir, settings.ProductTopic, publish.JSONLOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		closers = append(closers, sender.Close)
		outbox, err := embedded.NewCollection[publish.ParkedEvent](db, settings.ContainerOutbox.Name)
		if err != nil {
			b.Fatal(err)
		}
		pub = publish.NewPublisher(settings.ProductTopic, sender, publish.NewOutbox(outbox), slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	pb.close = func() {
		for _, c := range closers {
			_ = c()
		}
	}
	pb.h = handlers.New(handlers.Deps{
		Log:         slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Products:    &catalog.Service{State: states, Publisher: pub, Concurrency: 1},
		DeadLetters: deadlettertest.Local(b),
	})
	for _, env := range create {
		pb.post(b, env)
	}
	*pb.counts = encodingPublisher{}
	return pb
}

func (pb *productBench) post(b *testing.B, env []byte) {
	w := httptest.NewRecorder()
	pb.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/"+handlers.FnProductChanges, bytes.NewReader(env)))
	if w.Code != 200 {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

// BenchmarkProductChanges measures POST /ProductChanges inside the process: envelope decode
// (documents encoded three times), validation, state reads, diff, CloudEvents construction, the
// publish call and the state writes, on embedded stores, in batches of 100 documents
// (maxItemsPerInvocation) over a 10,000-product catalog with the documented change mix. "fake"
// encodes each publish call's body as the Event Grid sender would; "jsonl" is the local default
// publisher (publish.JSONL + outbox). Per core: go test -run '^$' -bench ProductChanges -cpu 1 ./handlers/
func BenchmarkProductChanges(b *testing.B) {
	const products, changes, batch = 10_000, 50_000, 100
	create, change := productChangeEnvelopes(products, changes, batch)
	for _, variant := range []string{"fake", "jsonl"} {
		b.Run(variant, func(b *testing.B) {
			pb := newProductBench(b, create, variant == "jsonl")
			b.ReportAllocs()
			docs, next := 0, 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if next == len(change) {
					// Every change has been applied: start again from the created catalog, untimed,
					// so that each timed document is a new version (not a redelivery).
					b.StopTimer()
					pb.close()
					pb = newProductBench(b, create, variant == "jsonl")
					next = 0
					b.StartTimer()
				}
				pb.post(b, change[next])
				next++
				docs += batch
			}
			b.StopTimer()
			b.ReportMetric(float64(docs)/b.Elapsed().Seconds(), "docs/s")
			pb.close()
		})
	}
}

// BenchmarkProductChangesRequests reports, for one pass over the 50,000 documented changes, the
// Event Grid publish requests, events and published-state writes per 1,000 changes, and the mean
// request body size.
func BenchmarkProductChangesRequests(b *testing.B) {
	const products, changes, batch = 10_000, 50_000, 100
	create, change := productChangeEnvelopes(products, changes, batch)
	for b.Loop() {
		pb := newProductBench(b, create, false)
		for _, env := range change {
			pb.post(b, env)
		}
		_ = pb.db.Flush()
		c := pb.counts
		b.ReportMetric(float64(c.calls)*1000/changes, "requests/1000changes")
		b.ReportMetric(float64(c.events)*1000/changes, "events/1000changes")
		if c.calls > 0 {
			b.ReportMetric(float64(c.bytes)/float64(c.calls), "bytes/request")
		}
		pb.close()
	}
}

// TestProductWorkloadShape keeps the benchmark's workload honest: replaying it publishes the kinds
// of events the mix promises, and re-delivering it publishes nothing.
func TestProductWorkloadShape(t *testing.T) {
	create, change := productChangeEnvelopes(500, 2000, 100)
	e := newProductEnv(t)
	e.deps.Products.Concurrency = 4
	post := func(env []byte) {
		res, err := e.host.Invoke(context.Background(), handlers.FnProductChanges, env)
		if err != nil || res.Status != 200 {
			t.Fatalf("%v %+v", err, res)
		}
	}
	for _, env := range create {
		post(env)
	}
	if n := len(e.pub.take()); n != 500 {
		t.Fatalf("%d created events, want 500", n)
	}
	for _, env := range change {
		post(env)
	}
	counts := map[string]int{}
	for _, s := range e.pub.take() {
		counts[s[bytes.LastIndexByte([]byte(s), ' ')+1:]]++
	}
	for _, typ := range catalog.Types() {
		if counts[typ] == 0 {
			t.Errorf("workload published no %s: %v", typ, counts)
		}
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	// Roughly 45% of changes are visible; each publishes 1 to 3 events.
	if total < 2000*35/100 || total > 2000*80/100 {
		t.Errorf("%d events for 2000 changes: %v", total, counts)
	}
	for _, env := range change {
		post(env)
	}
	if n := len(e.pub.take()); n != 0 {
		t.Fatalf("re-delivery published %d events", n)
	}
	if len(e.records(deadletter.KindPoison)) != 0 {
		t.Fatal("workload has invalid documents")
	}
}
