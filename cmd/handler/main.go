// Command handler is the Azure Functions custom handler: one HTTP server on
// 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT serving every function under functions/.
//
// It binds the port and answers GET / before anything else, so the host sees it ready at once; the
// stores are opened right after, and function calls wait for them. A malformed setting stops
// start-up with a message naming it.
//
// Usage:
//
//	handler                         serve (what the Functions host runs)
//	handler replay [-function F] [-poison]   replay dead-lettered events once, then exit
//	handler relay [-requeue DEST]            re-send the outbox once, then exit
//	handler seed-products -file F            record existing products' state silently (first deployment)
//	handler rollup [-day YYYY-MM-DD] [-reprocess]   complete (again) a UTC day of the Capture rollup
//	handler deadletters [-function F]        print dead-lettered records as JSON lines
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/protocol"
	"github.com/contoso/eventpipeline/pkg/settings"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	start := time.Now()
	cfg, err := settings.Load(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "handler: configuration error: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if len(args) > 0 {
		return command(ctx, args, cfg, log, stderr)
	}
	budget, err := loadBudget(getenv, log)
	if err != nil {
		fmt.Fprintf(stderr, "handler: configuration error: %v\n", err)
		return 2
	}

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		fmt.Fprintf(stderr, "handler: listen on 127.0.0.1:%d (FUNCTIONS_CUSTOMHANDLER_PORT): %v\n", cfg.Port, err)
		return 1
	}
	g := &gate{ready: make(chan struct{})}
	srv := newServer(g, budget)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "startupMs", float64(time.Since(start).Microseconds())/1000)

	deps, closeDeps, err := build(ctx, cfg, log)
	if err != nil {
		log.Error("start-up failed", "error", err.Error())
		fmt.Fprintf(stderr, "handler: %v\n", err)
		_ = srv.Close()
		return 1
	}
	defer closeDeps()
	deps.Budget = budget
	g.open(handlers.New(*deps))
	log.Info("ready", append([]any{"readyMs", float64(time.Since(start).Microseconds()) / 1000}, cfg.Modes()...)...)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
	case err := <-serveErr:
		log.Error("server stopped", "error", err.Error())
		return 1
	}
	// In-flight invocations finish (their writes are committed before they answer); then the stores
	// close. The host gives a worker a few seconds after SIGTERM; an invocation cut short by SIGKILL
	// is redelivered.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutdown", "error", err.Error())
	}
	return 0
}

// newServer is the handler's HTTP server: the host's only client. Every limit is set: headers in 10 s,
// a request body within ReadTimeout, an answer within WriteTimeout (longer than any invocation may
// run: the function timeout, plus a minute, which is also the host's own client timeout), idle
// keep-alive connections closed after two minutes. Bodies are bounded per route (pkg/protocol).
func newServer(h http.Handler, b protocol.Budget) *http.Server {
	write := b.FunctionTimeout + time.Minute
	if b.FunctionTimeout <= 0 {
		write = 0 // functionTimeout -1: the host waits for ever, so may we
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute,
		WriteTimeout: write, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 1 << 20}
}

// loadBudget derives the invocations' deadlines from functionTimeout in host.json, read from the app
// root the host gives (FUNCTIONS_APP_ROOT_PATH), else the working directory. Without a host.json (the
// handler started by hand) the host's default of 30 minutes is assumed.
func loadBudget(getenv func(string) string, log *slog.Logger) (protocol.Budget, error) {
	dir := getenv("FUNCTIONS_APP_ROOT_PATH")
	if dir == "" {
		dir = "."
	}
	t, found, err := protocol.LoadFunctionTimeout(dir)
	if err != nil {
		return protocol.Budget{}, err
	}
	b := protocol.Budget{FunctionTimeout: t}
	if !found {
		log.Info("no host.json in the app root: assuming the host's default functionTimeout", "dir", dir, "functionTimeout", t.String())
	}
	log.Info("invocation deadlines", "functionTimeout", t.String(), "work", b.Work().String(), "overdue", b.Overdue().String(), "park", b.Park().String())
	return b, nil
}

// command runs a one-off maintenance command.
func command(ctx context.Context, args []string, cfg *settings.Config, log *slog.Logger, stderr io.Writer) int {
	switch args[0] {
	case "seed-products":
		return seedProducts(ctx, args[1:], cfg, log, stderr)
	case "relay":
		return relayCommand(ctx, args[1:], cfg, log, stderr)
	case "rollup":
		return rollup(ctx, args[1:], cfg, log, stderr)
	case "deadletters":
		return listDeadLetters(ctx, args[1:], cfg, log, stderr)
	case "replay":
		fs := flag.NewFlagSet("replay", flag.ContinueOnError)
		fs.SetOutput(stderr)
		fn := fs.String("function", handlers.FnRecentlyViewed, "function whose dead-lettered events to replay")
		poison := fs.Bool("poison", false, "also replay poison records (after a fix)")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		deps, closeDeps, err := build(ctx, cfg, log)
		if err != nil {
			fmt.Fprintf(stderr, "handler: %v\n", err)
			return 1
		}
		defer closeDeps()
		st, err := deps.Replay(ctx, *fn, *poison)
		log.Info("replay done", "function", *fn, "replayed", st.Replayed, "stillPoison", st.StillPoison, "poisonKept", st.Skipped)
		if err != nil {
			fmt.Fprintf(stderr, "handler: replay: %v\n", err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(stderr, "handler: unknown command %q (want: replay, relay, rollup, deadletters or seed-products)\n", args[0])
		return 2
	}
}

// listDeadLetters prints the dead-lettered records (of one function, or all) as JSON lines on stdout:
// the way to read them locally, where they live in the embedded store.
func listDeadLetters(ctx context.Context, args []string, cfg *settings.Config, log *slog.Logger, stderr io.Writer) int {
	fs := flag.NewFlagSet("deadletters", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fn := fs.String("function", "", "only this function's records")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var store deadletter.Store
	if cfg.Storage != nil {
		az, err := newAzure(ctx, cfg, log)
		if err != nil {
			fmt.Fprintf(stderr, "handler: %v\n", err)
			return 1
		}
		defer az.close()
		store = az.deadLetters()
	} else {
		// Read-only: this works beside a running handler on the same LOCAL_DATA_DIR.
		db, err := embedded.OpenReadOnly(cfg.DataDir)
		if err != nil {
			fmt.Fprintf(stderr, "handler: %v\n", err)
			return 1
		}
		defer db.Close()
		if store, err = deadletter.Open(db, handlers.Functions()); err != nil {
			fmt.Fprintf(stderr, "handler: %v\n", err)
			return 1
		}
	}
	enc := json.NewEncoder(os.Stdout)
	err := store.List(ctx, *fn, func(r deadletter.Record) error { return enc.Encode(r) })
	if err != nil {
		fmt.Fprintf(stderr, "handler: deadletters: %v\n", err)
		return 1
	}
	return 0
}

// gate answers the readiness probe at once and holds function calls until the stores are open.
type gate struct {
	ready chan struct{}
	once  sync.Once
	h     http.Handler
}

func (g *gate) open(h http.Handler) {
	g.once.Do(func() { g.h = h; close(g.ready) })
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		handlers.Health(w, r)
		return
	}
	select {
	case <-g.ready:
		g.h.ServeHTTP(w, r)
	case <-r.Context().Done():
		protocol.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "handler still starting"})
	}
}
