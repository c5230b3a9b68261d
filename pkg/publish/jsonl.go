package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
)

// JSONL is the embedded twin of a topic or hub: it appends each event, one structured CloudEvent JSON
// per line, to <LOCAL_DATA_DIR>/events/<name>.jsonl. The file is the record of what was published
// locally. Lines are appended with one write and one fsync per batch under a mutex, so an event is on
// disk before Send reports it delivered (nothing acknowledged is lost by a crash). The file is bounded:
// past MaxJSONLBytes it is renamed to <name>.jsonl.1 (replacing the previous one) and a new one is
// started, so a long local run keeps the latest events in at most twice that.
//
// Mirrors (partner webhooks when LOCAL_PARTNER_WEBHOOKS is set) get a copy of what was written,
// after the write. Their failures are logged, never returned: a partner endpoint that is down or
// fails the handshake must not fail the local run, and the JSON-lines file already has the events.
type JSONL struct {
	name    string
	path    string
	mirrors []Sender
	log     *slog.Logger

	mu sync.Mutex
	f  *os.File
}

// JSONLOptions are the optional parts of a JSONL sender.
type JSONLOptions struct {
	// Mirrors receive a copy of every event written (webhook.Sender for each partner webhook).
	Mirrors []Sender
	Log     *slog.Logger
}

var _ Sender = (*JSONL)(nil)

// NewJSONL opens (creating it and its directory) dataDir/events/<name>.jsonl for appending.
func NewJSONL(dataDir, name string, opts JSONLOptions) (*JSONL, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return nil, fmt.Errorf("publish.NewJSONL: %q is not a destination name", name)
	}
	dir := filepath.Join(dataDir, "events")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("publish.NewJSONL(%s): %w", name, err)
	}
	path := filepath.Join(dir, name+".jsonl")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("publish.NewJSONL(%s): %w", name, err)
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	return &JSONL{name: name, path: path, mirrors: opts.Mirrors, log: log.With("destination", name), f: f}, nil
}

// Path is the file the events go to.
func (j *JSONL) Path() string { return j.path }

// Send implements Sender. An event that is not a valid CloudEvents 1.0 event is rejected as Event Grid
// would reject it (a *PartialError says how many before it were written); a write failure is
// ErrNotDelivered.
func (j *JSONL) Send(ctx context.Context, events []event.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish.JSONL(%s): %w: %w", j.name, ErrNotDelivered, err)
	}
	var buf bytes.Buffer
	buf.Grow(512 * len(events))
	valid := len(events)
	var rejected error
	for i := range events {
		line, err := encodeLine(&events[i])
		if err != nil {
			valid = i
			rejected = &PartialError{Delivered: i, Failed: 1,
				Err: fmt.Errorf("publish.JSONL(%s): event %d (id %q): %w: %v", j.name, i, events[i].ID(), ErrRejected, err)}
			break
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	if valid > 0 {
		if err := j.append(buf.Bytes()); err != nil {
			return &PartialError{Delivered: 0, Failed: len(events),
				Err: fmt.Errorf("publish.JSONL(%s): %w: %w", j.name, ErrNotDelivered, err)}
		}
		j.log.Info("events published", "count", valid, "file", j.path)
		j.mirror(ctx, events[:valid])
	}
	return rejected
}

// MaxJSONLBytes is the size at which a JSON-lines file is rotated.
const MaxJSONLBytes = 64 << 20

func (j *JSONL) append(b []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return fmt.Errorf("%s is closed", j.path)
	}
	if fi, err := j.f.Stat(); err == nil && fi.Size()+int64(len(b)) > MaxJSONLBytes && fi.Size() > 0 {
		if err := j.rotate(); err != nil {
			return err
		}
	}
	if _, err := j.f.Write(b); err != nil {
		return err
	}
	return j.f.Sync()
}

// rotate renames the file to .1 and opens a new one. Called with j.mu held.
func (j *JSONL) rotate() error {
	if err := j.f.Close(); err != nil {
		return err
	}
	j.f = nil
	if err := os.Rename(j.path, j.path+".1"); err != nil {
		return fmt.Errorf("rotate %s: %w", j.path, err)
	}
	f, err := os.OpenFile(j.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("rotate %s: %w", j.path, err)
	}
	j.f = f
	return nil
}

func (j *JSONL) mirror(ctx context.Context, events []event.Event) {
	for _, m := range j.mirrors {
		if err := m.Send(ctx, events); err != nil {
			d, _ := Progress(err, len(events))
			j.log.Warn("partner webhook delivery failed (not fatal locally: the events are in the JSON-lines file)",
				"mirror", fmt.Sprint(m), "delivered", d, "of", len(events), "error", err.Error())
		}
	}
}

// Close closes the file. Sends after Close fail with ErrNotDelivered.
func (j *JSONL) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// encodeLine is the structured CloudEvent JSON of e, checked as a publisher would check it.
func encodeLine(e *event.Event) ([]byte, error) {
	if err := Validate(e); err != nil {
		return nil, err
	}
	// sdk-go's own encoder, without json.Marshal's extra compacting copy (a fifth of the cost).
	b, err := e.MarshalJSON()
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		// e.g. an attribute that is not UTF-8: sdk-go's encoder writes it as is.
		return nil, fmt.Errorf("the event does not encode to valid JSON")
	}
	if bytes.IndexByte(b, '\n') >= 0 {
		// sdk-go copies JSON data verbatim, so pretty-printed data would break the line: compact it.
		var c bytes.Buffer
		if err := json.Compact(&c, b); err != nil {
			return nil, err
		}
		b = c.Bytes()
	}
	return b, nil
}

// Validate checks what every destination requires of an event: a valid CloudEvents 1.0 event
// (id, source, type, specversion) whose data, when carried as JSON, is valid JSON, and when carried
// as a string, is UTF-8.
func Validate(e *event.Event) error {
	if e.SpecVersion() != event.CloudEventsVersionV1 {
		return fmt.Errorf("specversion %q: only CloudEvents 1.0 is published", e.SpecVersion())
	}
	if err := e.Validate(); err != nil {
		return err
	}
	switch data := e.Data(); {
	case data == nil || e.DataBase64:
	case InlineJSONData(e):
		if !json.Valid(data) {
			return fmt.Errorf("datacontenttype %q but data is not valid JSON", e.DataContentType())
		}
	case !utf8.Valid(data):
		// The structured format carries it as a JSON string, which cannot hold it unchanged.
		return fmt.Errorf("datacontenttype %q: data is not UTF-8 text; set binary data as base64", e.DataContentType())
	}
	return nil
}

// InlineJSONData reports whether the structured form of e carries its data as a JSON value ("data":
// {...}) rather than a string or base64: data that is not base64 and whose media type is JSON or
// unset. This is sdk-go's rule; the Event Grid adapter follows it so both twins write the same JSON.
func InlineJSONData(e *event.Event) bool {
	if e.DataEncoded == nil || e.DataBase64 {
		return false
	}
	mt := e.DataContentType()
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "", event.ApplicationJSON, event.TextJSON, event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON:
		return true
	}
	return false
}
