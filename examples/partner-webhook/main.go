// Command partner-webhook is a small receiver a Contoso partner can start from: it accepts the
// product events Contoso publishes through Event Grid (CloudEvents 1.0 delivery), answers the
// abuse-protection handshake, takes single events and batches, handles each event once by id, and
// keeps a mirror of the products it has heard about.
//
// Run it locally against the handler's embedded publisher:
//
//	go run ./examples/partner-webhook -addr 127.0.0.1:8099 -token s3cret
//	LOCAL_PARTNER_WEBHOOKS=http://127.0.0.1:8099/events ... handler
//
// With -token, every POST must carry "Authorization: Bearer <token>". An Entra ID-protected Event
// Grid subscription sends a JWT instead: validate it (audience, issuer, the
// AzureEventGridSecureWebhookSubscriber role), or let App Service Authentication do it in front of
// this process (docs/partners.md).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8099", "listen address")
	path := flag.String("path", "/events", "webhook path")
	token := flag.String("token", os.Getenv("PARTNER_WEBHOOK_TOKEN"), "bearer token required on POST (empty: none)")
	origins := flag.String("origins", "eventgrid.azure.net", "comma-separated origins allowed by the handshake (* for any)")
	flag.Parse()

	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	mirror := NewMirror()
	rc := &Receiver{
		AllowedOrigins: strings.Split(*origins, ","),
		Handle:         mirror.Apply,
		Seen:           NewDedupe(100_000),
	}
	if *token != "" {
		rc.Authorize = StaticBearer(*token)
	}
	mux := http.NewServeMux()
	mux.Handle(*path, logged(log, rc))
	mux.HandleFunc("GET /products", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(mirror.Snapshot())
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	log.Info("partner webhook listening", "addr", *addr, "path", *path, "bearer", *token != "")
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "partner-webhook:", err)
		os.Exit(1)
	}
}

func logged(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: 200}
		h.ServeHTTP(sw, r)
		log.Info("request", "method", r.Method, "contentType", r.Header.Get("Content-Type"), "status", sw.status)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) { w.status = s; w.ResponseWriter.WriteHeader(s) }

// Product is what the mirror keeps of a product event's data.
type Product struct {
	ProductID string  `json:"productId"`
	Name      string  `json:"name"`
	Category  string  `json:"category"`
	Price     float64 `json:"price"`
	Currency  string  `json:"currency"`
	Stock     int64   `json:"stock"`
	InStock   bool    `json:"inStock"`
	// Time is the event time of the change the entry reflects; older events do not overwrite it
	// (Event Grid does not keep order).
	Time time.Time `json:"time"`
}

// Mirror applies product events to an in-memory copy of the catalog.
type Mirror struct {
	mu       sync.Mutex
	products map[string]Product
	deleted  map[string]time.Time
}

// NewMirror returns an empty mirror.
func NewMirror() *Mirror {
	return &Mirror{products: map[string]Product{}, deleted: map[string]time.Time{}}
}

// Apply handles one event. Every product event carries the whole public product, so the mirror
// keeps the newest by event time; unknown types are ignored (a subscription may include more).
func (m *Mirror) Apply(ctx context.Context, e event.Event) error {
	if !strings.HasPrefix(e.Type(), "com.contoso.product.") {
		return nil
	}
	var p Product
	if err := json.Unmarshal(e.Data(), &p); err != nil || p.ProductID == "" {
		// A contract violation; failing makes Event Grid retry and eventually dead-letter it.
		return fmt.Errorf("product event data: %v", err)
	}
	p.Time = e.Time()
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.products[p.ProductID]; ok && cur.Time.After(p.Time) {
		return nil // a newer change already arrived
	}
	if t, ok := m.deleted[p.ProductID]; ok && t.After(p.Time) {
		return nil
	}
	if e.Type() == "com.contoso.product.deleted" {
		delete(m.products, p.ProductID)
		m.deleted[p.ProductID] = p.Time
		return nil
	}
	delete(m.deleted, p.ProductID)
	m.products[p.ProductID] = p
	return nil
}

// Snapshot returns the mirrored products.
func (m *Mirror) Snapshot() map[string]Product {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Product, len(m.products))
	for k, v := range m.products {
		out[k] = v
	}
	return out
}
