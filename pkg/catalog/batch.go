package catalog

import (
	"encoding/json"
	"time"

	"github.com/contoso/eventpipeline/pkg/deadletter"
)

// Source names where documents come from, for dead-letter records.
type Source struct {
	Function     string
	Name         string // e.g. "cosmos/contoso/products"
	InvocationID string
}

// Decoded is the outcome of decoding a change-feed batch.
type Decoded struct {
	Docs   []Document
	Poison []deadletter.Record
}

// DecodeBatch decodes the documents of a change-feed batch. A document that is not a valid product
// becomes a poison dead-letter record with every reason; the others are returned in order.
func DecodeBatch(src Source, raws []json.RawMessage, now time.Time) Decoded {
	d := Decoded{Docs: make([]Document, 0, len(raws))}
	for _, raw := range raws {
		doc, err := DecodeChange(raw)
		if err != nil {
			d.Poison = append(d.Poison, Record(src, &doc, deadletter.KindPoison, err.Error(), now))
			continue
		}
		d.Docs = append(d.Docs, doc)
	}
	return d
}

// Record builds the dead-letter record of a document. Its position is the product id (the
// container's partition key) and the document's _lsn, so the same version dead-lettered twice
// overwrites one record.
func Record(src Source, doc *Document, kind, reason string, now time.Time) deadletter.Record {
	seq := doc.Version.LSN
	if seq <= 0 {
		seq = -1 // no position: the record id derives from the body
	}
	rec := deadletter.Record{
		ID:       deadletter.RecordID(src.Function, doc.Product.ID, seq, doc.Raw),
		Function: src.Function, Kind: kind, Reason: reason, Source: src.Name,
		Partition: doc.Product.ID, SequenceNumber: seq, Offset: doc.Version.ETag,
		InvocationID: src.InvocationID, DeadLettered: now.UTC(),
	}
	rec.SetBody(doc.Raw)
	return rec
}

// ParkRecords builds the records that park docs for replay when a batch could not be finished on
// the host's last retry.
func ParkRecords(src Source, docs []Document, reason string, now time.Time) []deadletter.Record {
	recs := make([]deadletter.Record, len(docs))
	for i := range docs {
		recs[i] = Record(src, &docs[i], deadletter.KindParked, "parked on last retry: "+reason, now)
	}
	return recs
}
