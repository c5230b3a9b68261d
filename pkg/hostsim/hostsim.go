// Package hostsim drives the custom handler exactly as the Azure Functions host does: it renders
// invocation envelopes with the host's encodings (double-encoded strings, metadata arrays as strings,
// zone-less dates) and posts them chunked, with the host's headers. Tests, benchmarks and the local
// run (cmd/simulate) use it; production code never does.
package hostsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/contoso/eventpipeline/pkg/protocol"
)

// HostVersion is the version string the simulator reports.
const HostVersion = "4.1037.0.0"

// Event is one Event Hubs event to deliver.
type Event struct {
	Body           []byte
	SequenceNumber int64
	Offset         int64
	EnqueuedTime   time.Time
	PartitionKey   *string
	Properties     map[string]any
}

// EventHubBatch renders an eventHubTrigger (cardinality many, dataType string) envelope.
func EventHubBatch(function, binding string, pc protocol.PartitionContext, events []Event, retry *protocol.RetryContext) []byte {
	bodies := make([]string, len(events))
	seqs := make([]int64, len(events))
	offsets := make([]string, len(events))
	times := make([]string, len(events))
	keys := make([]*string, len(events))
	props := make([]map[string]any, len(events))
	sys := make([]map[string]any, len(events))
	for i, e := range events {
		bodies[i] = string(e.Body)
		seqs[i] = e.SequenceNumber
		offsets[i] = strconv.FormatInt(e.Offset, 10)
		t := e.EnqueuedTime.UTC()
		times[i] = t.Format("2006-01-02T15:04:05.999")
		keys[i] = e.PartitionKey
		props[i] = e.Properties
		if props[i] == nil {
			props[i] = map[string]any{}
		}
		sys[i] = map[string]any{
			"x-opt-sequence-number": e.SequenceNumber, "x-opt-offset": offsets[i],
			"x-opt-enqueued-time": t.Format("2006-01-02T15:04:05.999+00:00"),
			"SequenceNumber":      e.SequenceNumber, "Offset": e.Offset, "OffsetString": offsets[i],
			"PartitionKey": e.PartitionKey, "EnqueuedTimeUtc": times[i],
		}
	}
	meta := map[string]any{
		"TriggerPartitionContext": partitionContext(pc),
		"PartitionContext":        partitionContext(pc),
		"PartitionKeyArray":       jsonString(keys),
		"OffsetArray":             jsonString(offsets),
		"OffsetStringArray":       jsonString(offsets),
		"SequenceNumberArray":     jsonString(seqs),
		"EnqueuedTimeUtcArray":    jsonString(times),
		"PropertiesArray":         jsonString(props),
		"SystemPropertiesArray":   jsonString(sys),
		"sys":                     sysData(function),
	}
	if retry != nil {
		meta["RetryContext"] = map[string]any{"RetryCount": retry.RetryCount, "MaxRetryCount": retry.MaxRetryCount, "Exception": nil, "Instance": nil, "State": map[string]any{}}
	}
	return mustJSON(map[string]any{"Data": map[string]any{binding: jsonString(bodies)}, "Metadata": meta})
}

func partitionContext(pc protocol.PartitionContext) map[string]any {
	return map[string]any{
		"IsCheckpointingAfterInvocation": true, "FullyQualifiedNamespace": pc.FullyQualifiedNamespace,
		"EventHubName": pc.EventHubName, "ConsumerGroup": pc.ConsumerGroup, "PartitionId": pc.PartitionID,
	}
}

// HTTP renders an httpTrigger envelope from r. params are the route values; ids the identities the
// host authenticated (nil gives the anonymous empty list).
func HTTP(function, binding string, r *http.Request, params map[string]string, ids []protocol.Identity) ([]byte, error) {
	req, err := protocol.MarshalHTTPRequest(r, params, ids)
	if err != nil {
		return nil, err
	}
	meta := map[string]any{"Query": map[string]string{}, "Headers": map[string]string{}, "sys": sysData(function)}
	for k, v := range params {
		meta[k] = jsonString(v)
	}
	return mustJSON(map[string]any{"Data": map[string]any{binding: req}, "Metadata": meta}), nil
}

// FunctionKey returns the identity the host attaches for a caller that used the named function key.
func FunctionKey(name string) []protocol.Identity {
	return []protocol.Identity{{AuthenticationType: "WebJobsAuthLevel", IsAuthenticated: true, Claims: []protocol.Claim{
		{Type: "http://schemas.microsoft.com/2017/07/functions/claims/authlevel", Value: "Function"},
		{Type: "http://schemas.microsoft.com/2017/07/functions/claims/invoke", Value: "true"},
		{Type: protocol.ClaimKeyID, Value: name},
	}}}
}

// Timer renders a timerTrigger envelope.
func Timer(function, binding string, last, next time.Time, pastDue bool, retry *protocol.RetryContext) []byte {
	status := map[string]any{
		"Last": last.Format("2006-01-02T15:04:05.9999999+00:00"), "Next": next.Format("2006-01-02T15:04:05.9999999+00:00"),
		"LastUpdated": last.Format("2006-01-02T15:04:05.9999999+00:00"),
	}
	meta := map[string]any{"sys": sysData(function)}
	if retry != nil {
		meta["RetryContext"] = map[string]any{"RetryCount": retry.RetryCount, "MaxRetryCount": retry.MaxRetryCount, "Exception": nil}
	}
	return mustJSON(map[string]any{"Data": map[string]any{binding: map[string]any{
		"Schedule": map[string]any{"AdjustForDST": true}, "ScheduleStatus": status, "IsPastDue": pastDue,
	}}, "Metadata": meta})
}

// CosmosChanges renders a cosmosDBTrigger (extension v4) envelope: the documents array encoded three
// times.
func CosmosChanges(function, binding string, docs []json.RawMessage, retry *protocol.RetryContext) []byte {
	arr := mustJSON(docs)
	meta := map[string]any{"sys": sysData(function)}
	if retry != nil {
		meta["RetryContext"] = map[string]any{"RetryCount": retry.RetryCount, "MaxRetryCount": retry.MaxRetryCount, "Exception": nil}
	}
	return mustJSON(map[string]any{"Data": map[string]any{binding: jsonString(string(arr))}, "Metadata": meta})
}

// Object renders an envelope whose trigger value is a nested object (e.g. an eventGridTrigger event).
func Object(function, binding string, v any) []byte {
	return mustJSON(map[string]any{"Data": map[string]any{binding: v}, "Metadata": map[string]any{"sys": sysData(function)}})
}

func sysData(function string) map[string]any {
	return map[string]any{"MethodName": function, "UtcNow": time.Now().UTC().Format("2006-01-02T15:04:05.0000000Z"), "RandGuid": NewID()}
}

// jsonString is how the host writes every non-object value: JSON-encode it, then embed that text as
// a JSON string (so a string is encoded twice and an array arrives as a string holding JSON).
func jsonString(v any) string {
	return string(mustJSON(v))
}

func mustJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // Newtonsoft does not escape <, >, &
	if err := enc.Encode(v); err != nil {
		panic(err) // only ever called with marshalable values built here
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// NewID returns a random GUID-shaped id.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Client posts envelopes to a running handler the way the host does.
type Client struct {
	BaseURL string
	HTTP    *http.Client
}

// Result is the handler's reply to one invocation.
type Result struct {
	Status      int
	ContentType string
	Response    *protocol.Response
	Raw         []byte
}

// Invoke POSTs body to /<function> with chunked transfer encoding (the host sends no
// Content-Length) and the host's headers, and decodes the reply when it is 2xx.
func (c *Client) Invoke(ctx context.Context, function string, body []byte) (*Result, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	// An io.Reader that is not a *bytes.Reader makes net/http send chunked, like the host's ObjectContent.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/"+function, io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set(protocol.HeaderInvocationID, NewID())
	req.Header.Set(protocol.HeaderHostVersion, HostVersion)
	req.Header.Set("User-Agent", "Azure-Functions-Host/"+HostVersion)
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	out := &Result{Status: res.StatusCode, ContentType: res.Header.Get("Content-Type"), Raw: raw}
	if res.StatusCode/100 == 2 {
		var r protocol.Response
		if err := json.Unmarshal(raw, &r); err != nil {
			return out, fmt.Errorf("reply is not JSON: %w", err)
		}
		out.Response = &r
	}
	return out, nil
}

// HTTPOutput decodes Outputs.<name> as an http output binding value.
func (r *Result) HTTPOutput(name string) (*protocol.HTTPResponse, error) {
	if r.Response == nil {
		return nil, fmt.Errorf("invocation failed with status %d: %s", r.Status, r.Raw)
	}
	v, ok := r.Response.Outputs[name]
	if !ok {
		return nil, fmt.Errorf("no Outputs.%s in %s", name, r.Raw)
	}
	b, _ := json.Marshal(v)
	var hr protocol.HTTPResponse
	if err := json.Unmarshal(b, &hr); err != nil {
		return nil, err
	}
	return &hr, nil
}
