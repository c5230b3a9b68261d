// Package deadlettertest is the contract suite every deadletter.Store must pass.
package deadlettertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/pkg/deadletter"
)

// Run runs the suite; newStore returns an empty store.
func Run(t *testing.T, newStore func(t *testing.T) deadletter.Store) {
	ctx := context.Background()
	rec := func(fn, id string, body []byte) deadletter.Record {
		r := deadletter.Record{ID: id, Function: fn, Kind: deadletter.KindPoison, Reason: "body is not JSON",
			Partition: "3", SequenceNumber: 1001, Offset: "4294967296",
			EnqueuedTime: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), DeadLettered: time.Now().UTC().Truncate(time.Second)}
		r.SetBody(body)
		return r
	}
	t.Run("PutListRoundTrip", func(t *testing.T) {
		s := newStore(t)
		in := rec("RecentlyViewed", "r1", []byte("not json"))
		bin := rec("RecentlyViewed", "r2", []byte{0xff, 0xfe, 0x00})
		if err := s.Put(ctx, in, bin); err != nil {
			t.Fatal(err)
		}
		got := map[string]deadletter.Record{}
		if err := s.List(ctx, "RecentlyViewed", func(r deadletter.Record) error { got[r.ID] = r; return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("listed %d records, want 2", len(got))
		}
		r := got["r1"]
		if r.Reason != in.Reason || r.Partition != "3" || r.SequenceNumber != 1001 || r.Body != "not json" || !r.EnqueuedTime.Equal(in.EnqueuedTime) {
			t.Fatalf("record = %+v, want %+v", r, in)
		}
		b, err := got["r2"].RawBody()
		if err != nil || string(b) != "\xff\xfe\x00" {
			t.Fatalf("binary body = %q, %v", b, err)
		}
	})
	t.Run("PutIsIdempotent", func(t *testing.T) {
		s := newStore(t)
		r := rec("Fn", "same", []byte("x"))
		_ = s.Put(ctx, r)
		r.Reason = "updated"
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		n := 0
		_ = s.List(ctx, "Fn", func(got deadletter.Record) error {
			n++
			if got.Reason != "updated" {
				t.Errorf("reason %q, want updated", got.Reason)
			}
			return nil
		})
		if n != 1 {
			t.Fatalf("%d records after two puts of one id", n)
		}
	})
	t.Run("ListByFunctionAndAll", func(t *testing.T) {
		s := newStore(t)
		_ = s.Put(ctx, rec("A", "1", []byte("a")), rec("B", "2", []byte("b")))
		count := func(fn string) int {
			n := 0
			if err := s.List(ctx, fn, func(deadletter.Record) error { n++; return nil }); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if count("A") != 1 || count("B") != 1 || count("") != 2 || count("C") != 0 {
			t.Fatalf("counts A=%d B=%d all=%d C=%d", count("A"), count("B"), count(""), count("C"))
		}
	})
	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		_ = s.Put(ctx, rec("A", "1", []byte("a")))
		if err := s.Delete(ctx, "A", "1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "A", "1"); err != nil {
			t.Fatalf("delete missing: %v", err)
		}
		stop := errors.New("found")
		if err := s.List(ctx, "A", func(deadletter.Record) error { return stop }); err != nil {
			t.Fatalf("record still listed after delete")
		}
	})
	t.Run("ReplayParkedDeletesAndKeepsPoison", func(t *testing.T) {
		s := newStore(t)
		parked := rec("A", "p", []byte("ok"))
		parked.Kind = deadletter.KindParked
		poison := rec("A", "x", []byte("bad"))
		_ = s.Put(ctx, parked, poison)
		var seen []string
		st, err := deadletter.Replay(ctx, s, "A", false, func(ctx context.Context, r deadletter.Record) error {
			seen = append(seen, r.ID)
			return nil
		})
		if err != nil || st.Replayed != 1 || st.Skipped != 1 || len(seen) != 1 || seen[0] != "p" {
			t.Fatalf("replay: %+v %v seen %v", st, err, seen)
		}
		st, err = deadletter.Replay(ctx, s, "A", true, func(ctx context.Context, r deadletter.Record) error {
			return errors.Join(deadletter.ErrStillPoison, errors.New("still bad"))
		})
		if err != nil || st.StillPoison != 1 {
			t.Fatalf("replay poison: %+v %v", st, err)
		}
	})
}
