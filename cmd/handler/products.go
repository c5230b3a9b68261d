package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/contoso/eventpipeline/pkg/azure/cosmos"
	"github.com/contoso/eventpipeline/pkg/catalog"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// buildProducts wires ProductChanges: the published-state store (Cosmos DB container
// publishedState when CosmosDBConnection is set, the embedded collection of that name otherwise)
// and the ProductEventsTopic publisher (Event Grid, or the JSON-lines twin with
// LOCAL_PARTNER_WEBHOOKS locally; see publishing.go).
func buildProducts(cfg *settings.Config, az *azureAdapters, embeddedDB func() (*embedded.DB, error), pub catalog.Publisher) (*catalog.Service, error) {
	svc := &catalog.Service{Publisher: pub, Concurrency: 1, MaxAttempts: 3}
	if az.cosmos != nil {
		client := az.cosmos
		svc.State = cosmos.NewCollection[catalog.State](client, cfg.CosmosDatabase, settings.ContainerPublishedState)
		// Up to 100 point reads and writes per batch: overlap the round trips.
		svc.Concurrency = 16
		return svc, nil
	}
	db, err := embeddedDB()
	if err != nil {
		return nil, err
	}
	if svc.State, err = embedded.NewCollection[catalog.State](db, settings.ContainerPublishedState.Name); err != nil {
		return nil, fmt.Errorf("published state: %w", err)
	}
	return svc, nil
}

// seedProducts is `handler seed-products -file F`: it records the public state of every product in
// F (one product document per line, or one JSON array of them, as exported from the products
// container) in the published-state store without publishing anything. Run it before the first
// start of ProductChanges over an existing catalog (docs/product-events.md). Invalid documents are
// reported and skipped; products that already have a published state are left alone, so it can be
// re-run.
func seedProducts(ctx context.Context, args []string, cfg *settings.Config, log *slog.Logger, stderr io.Writer) int {
	fs := flag.NewFlagSet("seed-products", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "product documents: JSON lines or a JSON array (- for standard input)")
	batch := fs.Int("batch", 500, "documents recorded per store round")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" || *batch < 1 {
		fmt.Fprintln(stderr, "handler seed-products: -file is required (and -batch must be positive)")
		fs.Usage()
		return 2
	}
	in := io.Reader(os.Stdin)
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			fmt.Fprintf(stderr, "handler seed-products: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	deps, closeDeps, err := build(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "handler: %v\n", err)
		return 1
	}
	defer closeDeps()
	if deps.Products == nil {
		fmt.Fprintln(stderr, "handler seed-products: product publishing is not configured")
		return 1
	}
	var total catalog.SeedStats
	invalid := 0
	docs := make([]catalog.Document, 0, *batch)
	flush := func() error {
		st, err := deps.Products.Seed(ctx, docs)
		total.Documents += st.Documents
		total.Recorded += st.Recorded
		total.Existing += st.Existing
		total.Deleted += st.Deleted
		docs = docs[:0]
		return err
	}
	err = readDocuments(in, func(n int, raw []byte) error {
		d, err := catalog.DecodeSnapshot(raw)
		if err != nil {
			invalid++
			if invalid <= 20 {
				log.Warn("invalid product document skipped", "document", n, "reason", err.Error())
			}
			return nil
		}
		// Keep the document's bytes out of the state: only the product is recorded.
		d.Raw = nil
		docs = append(docs, d)
		if len(docs) == *batch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	log.Info("seed-products done", "documents", total.Documents+invalid, "recorded", total.Recorded,
		"alreadyPublished", total.Existing, "deleted", total.Deleted, "invalid", invalid)
	if err != nil {
		fmt.Fprintf(stderr, "handler seed-products: %v\n", err)
		return 1
	}
	return 0
}

// readDocuments calls fn with each document of r: JSON lines, or a single JSON array.
func readDocuments(r io.Reader, fn func(n int, raw []byte) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		b, err := br.Peek(1)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t' || b[0] == 0xEF || b[0] == 0xBB || b[0] == 0xBF {
			_, _ = br.ReadByte() // leading space or a UTF-8 byte-order mark
			continue
		}
		if b[0] == '[' {
			return readArray(br, fn)
		}
		break
	}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	n := 0
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		n++
		if err := fn(n, bytes.Clone(line)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", n+1, err)
	}
	return nil
}

func readArray(r io.Reader, fn func(n int, raw []byte) error) error {
	dec := json.NewDecoder(r)
	if _, err := dec.Token(); err != nil {
		return err
	}
	n := 0
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("document %d: %w", n+1, err)
		}
		n++
		if err := fn(n, raw); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return err
}
