package capture

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TypeFileCreated is the Event Grid event type Event Hubs publishes when Capture wrote a file.
const TypeFileCreated = "Microsoft.EventHub.CaptureFileCreated"

// ErrOtherEvent: a valid notification of another event type (skipped, not poison).
var ErrOtherEvent = errors.New("not a CaptureFileCreated event")

// Notification is an Event Grid delivery of Microsoft.EventHub.CaptureFileCreated as the
// eventGridTrigger hands it over, in either delivery schema: CloudEvents 1.0 (specversion, type,
// source) or the Event Grid schema (eventType, topic, dataVersion). Decode it with
// protocol.DecodeObject, then check it with FileCreated.
type Notification struct {
	SpecVersion string          `json:"specversion"`
	Type        string          `json:"type"`      // CloudEvents
	EventType   string          `json:"eventType"` // Event Grid schema
	ID          string          `json:"id"`
	Source      string          `json:"source"` // CloudEvents
	Topic       string          `json:"topic"`  // Event Grid schema
	Subject     string          `json:"subject"`
	Data        json.RawMessage `json:"data"`
}

// FileCreatedData is the event's data (learn.microsoft.com/azure/event-grid/event-schema-event-hubs).
type FileCreatedData struct {
	FileURL             string `json:"fileUrl"`
	FileType            string `json:"fileType"`
	PartitionID         string `json:"partitionId"`
	SizeInBytes         int64  `json:"sizeInBytes"`
	EventCount          int64  `json:"eventCount"`
	FirstSequenceNumber int64  `json:"firstSequenceNumber"`
	LastSequenceNumber  int64  `json:"lastSequenceNumber"`
	FirstEnqueueTime    string `json:"firstEnqueueTime"`
	LastEnqueueTime     string `json:"lastEnqueueTime"`
}

// FileCreated is a checked notification: which file of the Capture container was written.
type FileCreated struct {
	ID          string
	Source      string
	Name        string // blob name in the container
	Path        Path
	SizeInBytes int64
	// EventCount is how many records Capture says it wrote (the reader's count must match).
	EventCount          int64
	FirstSequenceNumber int64
	LastSequenceNumber  int64
	FirstEnqueueTime    time.Time // zero when absent or unparsable
	LastEnqueueTime     time.Time
}

// FileCreated checks the notification against the Capture container this app reads: the type, and
// a fileUrl naming a blob of that container in Capture's layout whose partition is partitionId.
// Another event type is ErrOtherEvent; anything malformed is ErrInvalid (poison).
func (n *Notification) FileCreated(container string) (FileCreated, error) {
	typ := n.Type
	if typ == "" {
		typ = n.EventType
	}
	if typ == "" {
		return FileCreated{}, fmt.Errorf("%w: the event has neither type nor eventType", ErrInvalid)
	}
	if typ != TypeFileCreated {
		return FileCreated{}, fmt.Errorf("%w: %q", ErrOtherEvent, typ)
	}
	if len(n.Data) == 0 || n.Data[0] != '{' {
		return FileCreated{}, fmt.Errorf("%w: data is not an object", ErrInvalid)
	}
	var d FileCreatedData
	if err := json.Unmarshal(n.Data, &d); err != nil {
		return FileCreated{}, fmt.Errorf("%w: data: %v", ErrInvalid, err)
	}
	name, err := BlobName(d.FileURL, container)
	if err != nil {
		return FileCreated{}, err
	}
	p, err := ParsePath(name)
	if err != nil {
		return FileCreated{}, err
	}
	if d.PartitionID != "" && d.PartitionID != p.Partition {
		return FileCreated{}, fmt.Errorf("%w: partitionId %q but the file is in partition %q", ErrInvalid, d.PartitionID, p.Partition)
	}
	if d.SizeInBytes < 0 || d.EventCount < 0 {
		return FileCreated{}, fmt.Errorf("%w: negative sizeInBytes or eventCount", ErrInvalid)
	}
	source := n.Source
	if source == "" {
		source = n.Topic
	}
	return FileCreated{ID: n.ID, Source: source, Name: name, Path: p, SizeInBytes: d.SizeInBytes, EventCount: d.EventCount,
		FirstSequenceNumber: d.FirstSequenceNumber, LastSequenceNumber: d.LastSequenceNumber,
		FirstEnqueueTime: parseEventTime(d.FirstEnqueueTime), LastEnqueueTime: parseEventTime(d.LastEnqueueTime)}, nil
}

// BlobName is the blob name of fileURL in container: the part of the URL path after the container
// segment, which must be followed by a Capture file name. Both the account-host form
// (https://<account>.blob.core.windows.net/<container>/<name>) and the path form of Azurite
// (http://127.0.0.1:10000/<account>/<container>/<name>) are accepted; the URL's host is not used to
// read anything (the app reads its own account).
func BlobName(fileURL, container string) (string, error) {
	u, err := url.Parse(fileURL)
	if err != nil || u.Path == "" {
		return "", fmt.Errorf("%w: fileUrl %q is not a URL", ErrInvalid, truncate(fileURL))
	}
	seg := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	for i := 0; i < 2 && i < len(seg); i++ {
		if seg[i] != container {
			continue
		}
		name := strings.Join(seg[i+1:], "/")
		if _, err := ParsePath(name); err == nil && strings.HasSuffix(name, Extension) {
			return name, nil
		}
	}
	return "", fmt.Errorf("%w: fileUrl %q is not a Capture file of container %q", ErrInvalid, truncate(fileURL), container)
}

func parseEventTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999"} {
		if t, err := time.Parse(layout, s); err == nil && t.Year() > 1 {
			return t.UTC()
		}
	}
	return time.Time{}
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
