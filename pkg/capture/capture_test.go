package capture_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/pkg/capture"
	"github.com/contoso/eventpipeline/pkg/capture/capturetest"
	"github.com/contoso/eventpipeline/pkg/protocol"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		name string
		want capture.Path
		err  bool
	}{
		{"ns/clickstream/0/2026/11/24/08/05/00.avro", capture.Path{Namespace: "ns", EventHub: "clickstream", Partition: "0", Window: t0}, false},
		{"ns/clickstream/12/2026/11/24/08/05/00", capture.Path{Namespace: "ns", EventHub: "clickstream", Partition: "12", Window: t0}, false},
		{"ns/clickstream/0/2026/11/24/08/05.avro", capture.Path{}, true},
		{"ns/clickstream/0/2026/11/24/8/05/00.avro", capture.Path{}, true},
		{"ns/clickstream/0/2026/02/30/08/05/00.avro", capture.Path{}, true},
		{"ns/clickstream/0/2026/11/24/24/00/00.avro", capture.Path{}, true},
		{"ns/../0/2026/11/24/08/05/00.avro", capture.Path{}, true},
		{"/clickstream/0/2026/11/24/08/05/00.avro", capture.Path{}, true},
		{"ns/clickstream/0/2026/11/24/08/05/00/extra.avro", capture.Path{}, true},
		{"ns/clickstream/0/+026/11/24/08/05/00.avro", capture.Path{}, true},
	} {
		got, err := capture.ParsePath(tc.name)
		if (err != nil) != tc.err {
			t.Errorf("ParsePath(%q) err = %v, want error %v", tc.name, err, tc.err)
			continue
		}
		if err != nil {
			if !errors.Is(err, capture.ErrInvalid) {
				t.Errorf("ParsePath(%q) err = %v, want ErrInvalid", tc.name, err)
			}
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParsePath(%q) (-want +got):\n%s", tc.name, diff)
		}
		if n := got.Name(); strings.TrimSuffix(n, ".avro") != strings.TrimSuffix(tc.name, ".avro") {
			t.Errorf("Name() = %q, want %q", n, tc.name)
		}
	}
}

func TestSortFilesByWindowThenPartition(t *testing.T) {
	names := []string{
		"ns/clickstream/10/2026/11/24/08/05/00.avro",
		"ns/clickstream/2/2026/11/24/08/05/00.avro",
		"ns/clickstream/0/2026/11/24/08/10/00.avro",
		"ns/clickstream/1/2026/11/24/08/00/00.avro",
	}
	var files []capture.File
	for _, n := range names {
		p, err := capture.ParsePath(n)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, capture.File{Name: n, Path: p})
	}
	capture.SortFiles(files)
	var got []string
	for _, f := range files {
		got = append(got, f.Name)
	}
	want := []string{names[3], names[1], names[0], names[2]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestDirSource(t *testing.T) {
	ctx := context.Background()
	d := capture.Dir{Root: t.TempDir()}
	mk := func(name string, n int) {
		p, err := capture.ParsePath(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := d.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		w, err := capture.NewWriter(f, capture.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range sampleEvents(n) {
			if err := w.Write(e); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	mk("ns/clickstream/1/2026/11/24/23/55/00.avro", 3)
	mk("ns/clickstream/0/2026/11/24/00/00/00.avro", 2)
	mk("ns/clickstream/0/2026/11/25/00/00/00.avro", 1) // next day
	mk("ns/feedback/0/2026/11/24/00/00/00.avro", 1)    // other hub
	// A stray file in the layout is not a Capture file.
	if err := os.WriteFile(filepath.Join(d.Root, "ns/clickstream/0/2026/11/24/00/00/notes.avro"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := d.List(ctx, "clickstream", t0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
		if f.Size <= 0 {
			t.Errorf("%s: size %d", f.Name, f.Size)
		}
	}
	want := []string{"ns/clickstream/0/2026/11/24/00/00/00.avro", "ns/clickstream/1/2026/11/24/23/55/00.avro"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Fatalf("List (-want +got):\n%s", diff)
	}
	rc, size, err := d.Open(ctx, want[1])
	if err != nil {
		t.Fatal(err)
	}
	n, err := capture.ReadAll(rc, capture.ReaderOptions{Size: size}, func(*capture.Record) error { return nil })
	rc.Close()
	if err != nil || n != 3 {
		t.Fatalf("read %d records, err %v", n, err)
	}
	if _, _, err := d.Open(ctx, "ns/clickstream/0/2026/11/24/01/00/00.avro"); !errors.Is(err, capture.ErrNotFound) {
		t.Fatalf("missing file: err = %v, want ErrNotFound", err)
	}
	if _, _, err := d.Open(ctx, "../../etc/passwd"); !errors.Is(err, capture.ErrInvalid) {
		t.Fatalf("bad name: err = %v, want ErrInvalid", err)
	}
	empty, err := capture.Dir{Root: filepath.Join(d.Root, "missing")}.List(ctx, "clickstream", t0)
	if err != nil || len(empty) != 0 {
		t.Fatalf("missing root: %v, %v", empty, err)
	}
}

func notification(t *testing.T, file string) capture.Notification {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	req := &protocol.Request{Data: map[string]json.RawMessage{"event": b}}
	var n capture.Notification
	if err := protocol.DecodeObject(req, "event", &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFileCreatedBothSchemas(t *testing.T) {
	p, _ := capture.ParsePath("contoso/clickstream/1/2026/11/25/02/00/00.avro")
	want := capture.FileCreated{Name: "contoso/clickstream/1/2026/11/25/02/00/00.avro", Path: p, SizeInBytes: 249168,
		EventCount: 1500, FirstSequenceNumber: 2850, LastSequenceNumber: 4349,
		FirstEnqueueTime: time.Date(2026, 11, 25, 1, 59, 0, 123e6, time.UTC), LastEnqueueTime: time.Date(2026, 11, 25, 1, 59, 59, 987e6, time.UTC)}
	for _, file := range []string{"filecreated-cloudevent.json", "filecreated-eventgrid.json"} {
		n := notification(t, file)
		got, err := n.FileCreated("capture")
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		got.ID, got.Source = "", ""
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", file, diff)
		}
	}
	// The host may hand the event over as a (double-encoded) string.
	b, _ := os.ReadFile("testdata/filecreated-cloudevent.json")
	s, _ := json.Marshal(string(b))
	s2, _ := json.Marshal(string(s))
	var n capture.Notification
	if err := protocol.DecodeObject(&protocol.Request{Data: map[string]json.RawMessage{"event": s2}}, "event", &n); err != nil {
		t.Fatal(err)
	}
	if _, err := n.FileCreated("capture"); err != nil {
		t.Fatal(err)
	}
}

func TestFileCreatedRejects(t *testing.T) {
	base := notification(t, "filecreated-cloudevent.json")
	mutate := func(f func(n *capture.Notification, d map[string]any)) capture.Notification {
		n := base
		var d map[string]any
		_ = json.Unmarshal(base.Data, &d)
		f(&n, d)
		n.Data, _ = json.Marshal(d)
		return n
	}
	for name, tc := range map[string]struct {
		n    capture.Notification
		want error
	}{
		"other type": {mutate(func(n *capture.Notification, d map[string]any) { n.Type = "Microsoft.Storage.BlobCreated" }), capture.ErrOtherEvent},
		"no type":    {mutate(func(n *capture.Notification, d map[string]any) { n.Type = "" }), capture.ErrInvalid},
		"other container": {mutate(func(n *capture.Notification, d map[string]any) {
			d["fileUrl"] = strings.Replace(d["fileUrl"].(string), "/capture/", "/other/", 1)
		}), capture.ErrInvalid},
		"not a layout": {mutate(func(n *capture.Notification, d map[string]any) {
			d["fileUrl"] = "https://a.blob.core.windows.net/capture/x.avro"
		}), capture.ErrInvalid},
		"not a url":         {mutate(func(n *capture.Notification, d map[string]any) { d["fileUrl"] = "::" }), capture.ErrInvalid},
		"partition differs": {mutate(func(n *capture.Notification, d map[string]any) { d["partitionId"] = "3" }), capture.ErrInvalid},
		"negative count":    {mutate(func(n *capture.Notification, d map[string]any) { d["eventCount"] = -1 }), capture.ErrInvalid},
		"count is a string": {mutate(func(n *capture.Notification, d map[string]any) { d["eventCount"] = "9" }), capture.ErrInvalid},
		"data not object":   {func() capture.Notification { n := base; n.Data = json.RawMessage(`"x"`); return n }(), capture.ErrInvalid},
	} {
		if _, err := tc.n.FileCreated("capture"); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	// Azurite's path-style URL names the account first.
	n := mutate(func(n *capture.Notification, d map[string]any) {
		d["fileUrl"] = "http://127.0.0.1:10000/devstoreaccount1/capture/contoso/clickstream/1/2026/11/25/02/00/00.avro"
	})
	if fc, err := n.FileCreated("capture"); err != nil || fc.Name != "contoso/clickstream/1/2026/11/25/02/00/00.avro" {
		t.Errorf("Azurite URL: %+v, %v", fc, err)
	}
}

// FuzzFileCreated drives the whole decoding path of CaptureFileCreated (the binding value through
// protocol.DecodeObject, then the checks): never a panic, and what is accepted is consistent.
func FuzzFileCreated(f *testing.F) {
	for _, file := range []string{"filecreated-cloudevent.json", "filecreated-eventgrid.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		s, _ := json.Marshal(string(b))
		f.Add(s)
	}
	f.Add([]byte(`{"type":"Microsoft.EventHub.CaptureFileCreated","data":{"fileUrl":"http://h/a/capture/n/h/0/2026/01/01/00/00/00.avro"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		req := &protocol.Request{Data: map[string]json.RawMessage{"event": raw}}
		var n capture.Notification
		if err := protocol.DecodeObject(req, "event", &n); err != nil {
			if !errors.Is(err, protocol.ErrMalformed) {
				t.Fatalf("DecodeObject: %v is not ErrMalformed", err)
			}
			return
		}
		fc, err := n.FileCreated("capture")
		if err != nil {
			if !errors.Is(err, capture.ErrInvalid) && !errors.Is(err, capture.ErrOtherEvent) {
				t.Fatalf("FileCreated: %v is neither ErrInvalid nor ErrOtherEvent", err)
			}
			return
		}
		p, err := capture.ParsePath(fc.Name)
		if err != nil || p != fc.Path || p.Name() != fc.Name {
			t.Fatalf("accepted name %q does not round-trip: %+v, %v", fc.Name, p, err)
		}
		if fc.EventCount < 0 || fc.SizeInBytes < 0 {
			t.Fatalf("negative counts accepted: %+v", fc)
		}
	})
}

func TestDirContract(t *testing.T) {
	capturetest.Run(t, func(t *testing.T) (capture.Source, capturetest.Writer) {
		d := capture.Dir{Root: t.TempDir()}
		return d, func(t *testing.T, name string, data []byte) {
			p := filepath.Join(d.Root, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
}
