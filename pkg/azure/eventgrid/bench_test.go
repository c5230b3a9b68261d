package eventgrid

import (
	"context"
	"fmt"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/messaging"
	"github.com/cloudevents/sdk-go/v2/event"
)

func benchEvents(b *testing.B, n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		out[i] = jsonEvent(b, fmt.Sprintf("bench-%04d", i), map[string]any{
			"minute": "2026-11-25T10:31:00Z", "observed": 120 + i, "expected": 80.5, "score": 4.2, "direction": "spike",
		})
		out[i].SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	}
	return out
}

// BenchmarkConvertAndSplit measures what the adapter adds per event before the SDK: the mapping to
// messaging.CloudEvent, the exact size measurement (one encoding) and the split into requests.
//
//	go test -run '^$' -bench 'ConvertAndSplit|SendTLS' -benchmem ./pkg/azure/eventgrid/
func BenchmarkConvertAndSplit(b *testing.B) {
	events := benchEvents(b, 1000)
	requests := 0
	b.ReportAllocs()
	for b.Loop() {
		requests = 0
		if err := split(events, limits{MaxRequestBytes, MaxEventBytes, MaxEvents}, func(req []messaging.CloudEvent) error {
			requests++
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
	b.ReportMetric(float64(requests), "requests/1000events")
}

// BenchmarkSendTLS is the whole Send of 1,000 events to a local TLS test topic: conversion, split, the
// SDK's own encoding and the HTTPS round trips (loopback, so no network latency).
func BenchmarkSendTLS(b *testing.B) {
	tp := &topic{}
	tp.srv = newTLSServer(tp)
	defer tp.srv.Close()
	s, err := NewSender(tp.settings("k"), tp.options())
	if err != nil {
		b.Fatal(err)
	}
	events := benchEvents(b, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Send(ctx, events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
	b.ReportMetric(float64(len(tp.seen()))/float64(b.N), "requests/1000events")
}
