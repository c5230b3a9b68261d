// Package capturetest is the contract suite every capture.Source implementation must pass (the
// embedded capture.Dir and the Blob container adapter).
package capturetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/pkg/capture"
)

// Writer stores a file in the source under test (name relative to the container).
type Writer func(t *testing.T, name string, data []byte)

// Run runs the suite. newSource returns an empty source and how to add files to it.
func Run(t *testing.T, newSource func(t *testing.T) (capture.Source, Writer)) {
	ctx := context.Background()
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	file := func(name string) []byte {
		var buf bytes.Buffer
		w, err := capture.NewWriter(&buf, capture.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(capture.Event{SequenceNumber: 1, Offset: "0", EnqueuedTime: day, Body: []byte(name)}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	t.Run("EmptyListsNothing", func(t *testing.T) {
		s, _ := newSource(t)
		files, err := s.List(ctx, "clickstream", day)
		if err != nil || len(files) != 0 {
			t.Fatalf("List = %v, %v; want nothing", files, err)
		}
	})
	t.Run("ListsTheDayInCaptureOrder", func(t *testing.T) {
		s, write := newSource(t)
		want := []string{
			"ns1/clickstream/0/2026/11/24/00/00/00.avro",
			"ns1/clickstream/1/2026/11/24/00/00/00.avro",
			"ns2/clickstream/2/2026/11/24/00/00/00.avro", // by window, then partition number, then namespace
			"ns1/clickstream/10/2026/11/24/00/00/00.avro",
			"ns1/clickstream/0/2026/11/24/23/59/59.avro",
		}
		sizes := map[string]int{}
		for _, name := range want {
			b := file(name)
			sizes[name] = len(b)
			write(t, name, b)
		}
		for _, other := range []string{
			"ns1/clickstream/0/2026/11/25/00/00/00.avro", // next day
			"ns1/clickstream/0/2026/11/23/23/55/00.avro", // day before
			"ns1/feedback/0/2026/11/24/00/00/00.avro",    // other hub
			"ns1/clickstream/0/2026/11/24/00/00/notes.txt",
			"ns1/clickstream/0/2026/11/24/00/00/x.avro", // not Capture's name
		} {
			write(t, other, []byte("x"))
		}
		files, err := s.List(ctx, "clickstream", day)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range files {
			got = append(got, f.Name)
			if f.Size != int64(sizes[f.Name]) {
				t.Errorf("%s: size %d, want %d", f.Name, f.Size, sizes[f.Name])
			}
			if f.Path.Name() != f.Name {
				t.Errorf("%s: path %+v", f.Name, f.Path)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("List =\n%v\nwant\n%v", got, want)
		}
	})
	t.Run("OpenStreamsTheFile", func(t *testing.T) {
		s, write := newSource(t)
		name := "ns/clickstream/3/2026/11/24/08/05/00.avro"
		b := file(name)
		write(t, name, b)
		rc, size, err := s.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(got, b) || size != int64(len(b)) {
			t.Fatalf("Open: %d bytes (size %d), err %v; want the %d written", len(got), size, err, len(b))
		}
	})
	t.Run("OpenMissingIsNotFound", func(t *testing.T) {
		s, _ := newSource(t)
		if _, _, err := s.Open(ctx, "ns/clickstream/0/2026/11/24/00/00/00.avro"); !errors.Is(err, capture.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}
