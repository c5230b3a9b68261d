package publish_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/publish"
)

// fakeStore is a hand-written fake publish.Store that records what was parked.
type fakeStore struct {
	parked, rejected []string
	reasons          []string
	err              error
}

func (f *fakeStore) Park(_ context.Context, dest string, events []event.Event, reason string) error {
	if f.err != nil {
		return f.err
	}
	f.parked = append(f.parked, ids(events)...)
	f.reasons = append(f.reasons, reason)
	return nil
}

func (f *fakeStore) ParkRejected(_ context.Context, dest string, events []event.Event, reason string) error {
	if f.err != nil {
		return f.err
	}
	f.rejected = append(f.rejected, ids(events)...)
	f.reasons = append(f.reasons, reason)
	return nil
}

func (f *fakeStore) Relay(context.Context, string, publish.Sender) (publish.RelayStats, error) {
	return publish.RelayStats{}, nil
}

func TestPublish(t *testing.T) {
	type want struct {
		Err      error // nil, or the kind errors.Is must find
		Parked   []string
		Rejected []string
		Calls    [][]string
	}
	all := []string{"e0", "e1", "e2", "e3"}
	tests := []struct {
		name        string
		script      []func([]event.Event) error
		lastAttempt bool
		storeErr    error
		want        want
	}{
		{"delivered", nil, false, nil, want{Calls: [][]string{all}}},
		{"not delivered, retry left: fail the invocation", []func([]event.Event) error{notDelivered}, false, nil,
			want{Err: publish.ErrNotDelivered, Calls: [][]string{all}}},
		{"not delivered, last attempt: park all", []func([]event.Event) error{notDelivered}, true, nil,
			want{Parked: all, Calls: [][]string{all}}},
		{"partly delivered, last attempt: park the rest only", []func([]event.Event) error{partial(2, 1, publish.ErrNotDelivered)}, true, nil,
			want{Parked: []string{"e2", "e3"}, Calls: [][]string{all}}},
		{"unclassified error counts as not delivered", []func([]event.Event) error{unclassified}, false, nil,
			want{Err: publish.ErrNotDelivered, Calls: [][]string{all}}},
		{"unclassified error on last attempt is parked", []func([]event.Event) error{unclassified}, true, nil,
			want{Parked: all, Calls: [][]string{all}}},
		{"rejected: kept as rejected, not an invocation failure", []func([]event.Event) error{rejected}, false, nil,
			want{Rejected: all, Calls: [][]string{all}}},
		{"rejected run in the middle: the rest still goes out", []func([]event.Event) error{partial(1, 1, publish.ErrRejected)}, false, nil,
			want{Rejected: []string{"e1"}, Calls: [][]string{all, {"e2", "e3"}}}},
		{"rejected then not delivered on the last attempt", []func([]event.Event) error{partial(0, 1, publish.ErrRejected), partial(1, 2, publish.ErrNotDelivered)}, true, nil,
			want{Rejected: []string{"e0"}, Parked: []string{"e2", "e3"}, Calls: [][]string{all, {"e1", "e2", "e3"}}}},
		{"parking fails on the last attempt: fail loudly", []func([]event.Event) error{notDelivered}, true, errors.New("store down"),
			want{Err: publish.ErrNotDelivered, Calls: [][]string{all}}},
		{"keeping rejected fails: fail the invocation", []func([]event.Event) error{rejected}, true, errors.New("store down"),
			want{Err: errAny, Calls: [][]string{all}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scriptedSender{script: tt.script}
			store := &fakeStore{err: tt.storeErr}
			var logs bytes.Buffer
			p := publish.NewPublisher("ProductEventsTopic", s, store, slog.New(slog.NewTextHandler(&logs, nil)))
			err := p.Publish(context.Background(), newEvents(t, "e", 4), tt.lastAttempt)
			switch {
			case tt.want.Err == nil && err != nil:
				t.Fatalf("Publish: %v, want nil", err)
			case tt.want.Err == errAny && err == nil, tt.want.Err != nil && tt.want.Err != errAny && !errors.Is(err, tt.want.Err):
				t.Fatalf("Publish: %v, want %v", err, tt.want.Err)
			}
			got := want{Err: tt.want.Err, Parked: store.parked, Rejected: store.rejected, Calls: s.sent()}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if (len(store.parked) > 0 || len(store.rejected) > 0) && !bytes.Contains(logs.Bytes(), []byte("level=WARN")) {
				t.Errorf("parked or rejected events without a warning in the log:\n%s", logs.String())
			}
		})
	}
}

var errAny = errors.New("any error")

func TestPublishNothingAndNil(t *testing.T) {
	s := &scriptedSender{}
	p := publish.NewPublisher("T", s, &fakeStore{}, nil)
	if err := p.Publish(context.Background(), nil, false); err != nil || len(s.sent()) != 0 {
		t.Errorf("empty batch: %v, %d sends", err, len(s.sent()))
	}
	var none *publish.Publisher
	if err := none.Publish(context.Background(), newEvents(t, "e", 1), true); err == nil {
		t.Error("a nil Publisher accepted events silently")
	}
}

func TestProgress(t *testing.T) {
	tests := []struct {
		err          error
		n, d, failed int
	}{
		{errors.New("plain"), 5, 0, 5},
		{&publish.PartialError{Delivered: 2, Failed: 1, Err: publish.ErrRejected}, 5, 2, 1},
		{&publish.PartialError{Delivered: 9, Failed: 9}, 5, 5, 0},
		{&publish.PartialError{Delivered: -1, Failed: 0}, 5, 0, 1},
	}
	for _, tt := range tests {
		if d, f := publish.Progress(tt.err, tt.n); d != tt.d || f != tt.failed {
			t.Errorf("Progress(%v, %d) = %d, %d; want %d, %d", tt.err, tt.n, d, f, tt.d, tt.failed)
		}
	}
}

// TestPublisherWithDocOutbox goes through the whole path on the embedded store: parked on the last
// attempt, relayed when the destination is back; rejected, requeued after a fix, relayed.
func TestPublisherWithDocOutbox(t *testing.T) {
	ctx := context.Background()
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	docs, err := embedded.NewCollection[publish.ParkedEvent](db, "outbox")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedSender{script: []func([]event.Event) error{notDelivered, rejected}}
	p := publish.NewPublisher("AnalyticsEventsTopic", s, publish.NewOutbox(docs), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := p.Publish(ctx, newEvents(t, "down", 2), true); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, newEvents(t, "bad", 1), false); err != nil {
		t.Fatal(err)
	}
	st, err := p.Relay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(publish.RelayStats{Delivered: 2, Held: 1}, st); diff != "" {
		t.Errorf("relay (-want +got):\n%s", diff)
	}
	if n, err := p.Requeue(ctx); err != nil || n != 1 {
		t.Fatalf("Requeue = %d, %v", n, err)
	}
	if st, err := p.Relay(ctx); err != nil || st.Delivered != 1 || docs.Len() != 0 {
		t.Fatalf("relay after requeue: %+v, %v, %d left", st, err, docs.Len())
	}
	want := [][]string{{"down0", "down1"}, {"bad0"}, {"down0", "down1"}, {"bad0"}}
	if diff := cmp.Diff(want, s.sent()); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}
	if _, err := publish.NewPublisher("x", s, &fakeStore{}, nil).Requeue(ctx); err == nil {
		t.Error("Requeue on an outbox without it succeeded")
	}
}
