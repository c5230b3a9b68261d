package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Invocation is one call from the host, as a typed function sees it.
type Invocation struct {
	ID       string
	Function string
	Request  *Request
	// Log writes structured lines to the handler's stdout (the host logs them) and copies them into
	// the reply's Logs, so they appear as the invocation's traces in Application Insights.
	Log *slog.Logger
}

// Func is a function the host invokes. A nil error means the invocation succeeded, and the returned
// Response (nil is allowed) goes back to the host. A non-nil error fails the invocation: the handler
// answers 500, the host discards Outputs and Logs and applies the function's retry policy. Return
// an error only for what a retry can fix; poison input is dead-lettered by the function itself.
type Func func(ctx context.Context, inv *Invocation) (*Response, error)

type options struct {
	log *slog.Logger
}

// Option configures Handler.
type Option func(*options)

// WithLogger sets the base logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// Handler adapts f to the host's protocol on POST /<function>: it reads the envelope (chunked, no
// size limit), runs f, and writes the reply as a JSON object with Content-Type application/json.
func Handler(function string, f Func, opts ...Option) http.Handler {
	o := options{log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(HeaderInvocationID)
		logs := &collector{}
		log := slog.New(&teeHandler{base: o.log.Handler(), logs: logs}).With("function", function, "invocationId", id)
		buf := bodyPool.Get().(*bytes.Buffer)
		buf.Reset()
		// The request, and every raw value decoded from it, refers to buf: it is returned to the
		// pool only after the reply is written.
		defer func() {
			if buf.Cap() <= maxPooled {
				bodyPool.Put(buf)
			}
		}()
		_, err := buf.ReadFrom(r.Body)
		body := buf.Bytes()
		if err != nil {
			fail(w, log, fmt.Errorf("read request: %w", err))
			return
		}
		req, err := DecodeRequest(body)
		if err != nil {
			fail(w, log, err)
			return
		}
		inv := &Invocation{ID: id, Function: function, Request: req, Log: log}
		resp, err := safeCall(r.Context(), f, inv)
		if err != nil {
			fail(w, log, err)
			return
		}
		if resp == nil {
			resp = &Response{}
		}
		if resp.Outputs == nil {
			resp.Outputs = map[string]any{}
		}
		log.Debug("invocation done", "ms", time.Since(start).Milliseconds())
		resp.Logs = append(logs.take(), resp.Logs...)
		if resp.Logs == nil {
			resp.Logs = []string{}
		}
		WriteJSON(w, http.StatusOK, resp)
	})
}

// bodyPool recycles request buffers: an Event Hubs envelope is hundreds of kilobytes, and growing a
// fresh buffer for every invocation dominated the allocation profile.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooled = 8 << 20

// safeCall turns a panic in f into an error so that one bad event never takes the process (and every
// in-flight invocation with it) down.
func safeCall(ctx context.Context, f Func, inv *Invocation) (resp *Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return f(ctx, inv)
}

func fail(w http.ResponseWriter, log *slog.Logger, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, ErrMalformed) {
		// Still a failed invocation for the host; the status only helps a human reading traces.
		status = http.StatusBadRequest
	}
	log.Error("invocation failed", "error", err.Error())
	WriteJSON(w, status, map[string]string{"error": err.Error()})
}

// WriteJSON writes v as JSON with the content type the host requires.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"encode reply"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// collector keeps the invocation's log lines for the reply's Logs.
type collector struct {
	mu    sync.Mutex
	lines []string
}

func (c *collector) add(s string) {
	c.mu.Lock()
	c.lines = append(c.lines, s)
	c.mu.Unlock()
}

func (c *collector) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lines
	c.lines = nil
	return l
}

// teeHandler sends records to the base handler and renders Info+ records as text into the collector.
type teeHandler struct {
	base  slog.Handler
	logs  *collector
	attrs []slog.Attr
}

func (h *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.base.Enabled(ctx, l)
}

func (h *teeHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelInfo {
		var b strings.Builder
		b.WriteString(rec.Level.String())
		b.WriteByte(' ')
		b.WriteString(rec.Message)
		write := func(a slog.Attr) bool {
			if a.Key == "function" || a.Key == "invocationId" {
				return true
			}
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		}
		for _, a := range h.attrs {
			write(a)
		}
		rec.Attrs(write)
		h.logs.add(b.String())
	}
	if h.base.Enabled(ctx, rec.Level) {
		return h.base.Handle(ctx, rec)
	}
	return nil
}

func (h *teeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &teeHandler{base: h.base.WithAttrs(attrs), logs: h.logs, attrs: append(append([]slog.Attr{}, h.attrs...), attrs...)}
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	return &teeHandler{base: h.base.WithGroup(name), logs: h.logs, attrs: h.attrs}
}
