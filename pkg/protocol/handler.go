package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/contoso/eventpipeline/pkg/delivery"
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
	log     *slog.Logger
	budget  Budget
	commit  func(ctx context.Context) error
	maxBody int64
	overdue Func
}

// Option configures Handler.
type Option func(*options)

// WithLogger sets the base logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithBudget sets the deadlines of every invocation (see Budget); without it there are none.
func WithBudget(b Budget) Option { return func(o *options) { o.budget = b } }

// WithCommit sets what makes an invocation's writes durable (the embedded store's group commit). It
// runs after the function succeeded and before the host gets its answer: nothing is acknowledged that
// a crash could lose. If it fails, the invocation fails (the host retries; handlers are idempotent).
func WithCommit(commit func(ctx context.Context) error) Option {
	return func(o *options) { o.commit = commit }
}

// WithMaxBody bounds the envelope the handler reads (default DefaultMaxBody); a larger one fails the
// invocation with 413.
func WithMaxBody(n int64) Option { return func(o *options) { o.maxBody = n } }

// WithOverdue sets what to do with an invocation whose function has not returned by Budget.Overdue
// on the host's last attempt: park its input (dead-letter store) and answer, so the checkpoint never
// passes unsaved events. The function goes on in the background; its writes are idempotent. Without
// a hook, and before the last attempt, an overdue invocation fails.
func WithOverdue(f Func) Option { return func(o *options) { o.overdue = f } }

// DefaultMaxBody bounds an envelope: the largest Event Hubs batch the bindings deliver
// (maxEventBatchSize 256 events of up to 1 MiB, encoded twice) fits.
const DefaultMaxBody = 600 << 20

// ErrTooLarge: the envelope is over the handler's body limit.
var ErrTooLarge = errors.New("envelope too large")

// Handler adapts f to the host's protocol on POST /<function>: it reads the envelope (chunked, at most
// the body limit), runs f under the invocation's deadlines, makes its writes durable, and writes the
// reply as a JSON object with Content-Type application/json.
func Handler(function string, f Func, opts ...Option) http.Handler {
	o := options{log: slog.Default(), maxBody: DefaultMaxBody}
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
		// pool only after the reply is written, and never while an overdue function may still read it.
		pool := true
		defer func() {
			if pool && buf.Cap() <= maxPooled {
				bodyPool.Put(buf)
			}
		}()
		n, err := buf.ReadFrom(io.LimitReader(r.Body, o.maxBody+1))
		body := buf.Bytes()
		if err != nil {
			fail(w, log, fmt.Errorf("read request: %w", err))
			return
		}
		if n > o.maxBody {
			fail(w, log, fmt.Errorf("%w: over %d bytes", ErrTooLarge, o.maxBody))
			return
		}
		req, err := DecodeRequest(body)
		if err != nil {
			fail(w, log, err)
			return
		}
		inv := &Invocation{ID: id, Function: function, Request: req, Log: log}
		ctx := context.WithValue(r.Context(), startKey{}, start)
		resp, err, overdue := o.run(ctx, f, inv)
		if overdue {
			pool = false
		}
		if err == nil && o.commit != nil {
			ctx, cancel := o.parkContext(ctx)
			err = o.commit(ctx)
			cancel()
		}
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

// parkContext is the context of what must still happen before the answer (parking, the commit): it
// ends at Budget.Park, whatever happened to the work's context.
func (o *options) parkContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(parent)
	if o.budget.FunctionTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, time.Until(deadlineOf(parent, o.budget.Park())), ErrPastDeadline)
}

// ErrPastDeadline is the cause of an invocation context that reached its deadline.
var ErrPastDeadline = errors.New("invocation deadline passed (derived from host.json functionTimeout)")

// startKey keeps when the invocation began in its context, so every deadline of one invocation is
// measured from the same instant.
type startKey struct{}

func deadlineOf(ctx context.Context, after time.Duration) time.Time {
	start, ok := ctx.Value(startKey{}).(time.Time)
	if !ok {
		start = time.Now()
	}
	return start.Add(after)
}

// run calls f under the work deadline and watches for Budget.Overdue. overdue reports that f was
// left running.
func (o *options) run(parent context.Context, f Func, inv *Invocation) (resp *Response, err error, overdue bool) {
	if o.budget.FunctionTimeout <= 0 {
		resp, err = safeCall(parent, f, inv)
		return resp, err, false
	}
	base := parent
	reserve, cancelReserve := o.parkContext(base)
	defer cancelReserve()
	work, cancelWork := context.WithDeadlineCause(base, deadlineOf(base, o.budget.Work()), ErrPastDeadline)
	defer cancelWork()
	work = delivery.WithReserve(work, reserve)
	type result struct {
		resp *Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		r, e := safeCall(work, f, inv)
		done <- result{r, e}
	}()
	t := time.NewTimer(time.Until(deadlineOf(base, o.budget.Overdue())))
	defer t.Stop()
	select {
	case r := <-done:
		return r.resp, r.err, false
	case <-t.C:
	}
	late := fmt.Errorf("%w: the function has not returned after %s", ErrPastDeadline, o.budget.Overdue().Round(time.Millisecond))
	retry, rerr := inv.Request.Retry()
	if o.overdue == nil || rerr != nil || !retry.LastAttempt() {
		return nil, late, true
	}
	inv.Log.Error("invocation overdue on the last attempt: parking its input", "error", late.Error())
	resp, err = safeCall(reserve, o.overdue, inv)
	if err != nil {
		return nil, errors.Join(late, fmt.Errorf("parking the overdue invocation failed: %w", err)), true
	}
	return resp, nil, true
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
	if errors.Is(err, ErrTooLarge) {
		status = http.StatusRequestEntityTooLarge
	} else if errors.Is(err, ErrMalformed) {
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
