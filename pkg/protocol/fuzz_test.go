package protocol_test

import (
	"context"
	"os"
	"testing"

	"github.com/contoso/eventpipeline/pkg/protocol"
)

func seed(f *testing.F, files ...string) {
	for _, name := range files {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"Data":{"events":"[]"},"Metadata":{}}`))
	f.Add([]byte(`{"Data":null}`))
}

// The decoders must return an error, never panic, on any input.
func FuzzDecodeEventHubBatch(f *testing.F) {
	seed(f, "eventhub-many.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := protocol.DecodeRequest(b)
		if err != nil {
			return
		}
		batch, err := protocol.DecodeEventHubBatch(req, "events", false)
		if err == nil {
			for i := range batch.Events {
				_, _ = batch.Events[i].Properties()
			}
		}
		_, _ = protocol.DecodeEventHubBatch(req, "events", true)
		_, _ = req.Retry()
	})
}

func FuzzDecodeCosmosDocuments(f *testing.F) {
	seed(f, "cosmos-products.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if req, err := protocol.DecodeRequest(b); err == nil {
			_, _ = protocol.DecodeCosmosDocuments(req, "documents")
		}
	})
}

func FuzzDecodeHTTPRequest(f *testing.F) {
	seed(f, "http-nonforwarded.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := protocol.DecodeRequest(b)
		if err != nil {
			return
		}
		if hr, err := protocol.DecodeHTTPRequest(req, "req"); err == nil {
			_, _ = hr.NewHTTPRequest(context.Background())
		}
	})
}

func FuzzDecodeTimer(f *testing.F) {
	seed(f, "timer.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if req, err := protocol.DecodeRequest(b); err == nil {
			if ti, err := protocol.DecodeTimer(req, "myTimer"); err == nil {
				_ = ti.LastRun()
			}
		}
	})
}

func FuzzMetadata(f *testing.F) {
	seed(f, "eventhub-one.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if req, err := protocol.DecodeRequest(b); err == nil {
			_, _, _ = req.MetadataInt("SequenceNumber")
			_, _, _ = req.MetadataString("EnqueuedTimeUtc")
			var v []int64
			_, _ = req.MetadataArray("SequenceNumberArray", &v)
		}
	})
}
