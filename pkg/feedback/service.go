package feedback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/contoso/eventpipeline/pkg/docstore"
)

// Sender publishes CloudEvents (publish.Sender: Event Hubs hub "feedback" in Azure, the JSON-lines
// file events/feedback.jsonl locally). It returns an error wrapping publish.ErrNotDelivered when a
// retry may succeed, or publish.ErrRejected when the destination refused the events.
type Sender interface {
	Send(ctx context.Context, events []event.Event) error
}

// Record is the idempotency record of one partner's key, in Cosmos DB container "idempotency"
// (partition key /partnerId). Its id is the event id derived from partner and key, and that id is
// also the answer the partner got, so replaying the request gives the same answer.
type Record struct {
	ID          string    `json:"id"`
	PartnerID   string    `json:"partnerId"`
	Key         string    `json:"key"`
	Fingerprint string    `json:"fingerprint"`
	State       string    `json:"state"`
	LeaseUntil  time.Time `json:"leaseUntil,omitzero"`
	AcceptedAt  time.Time `json:"acceptedAt,omitzero"`
}

// Record states. A pending record reserves the key while its request publishes, so two concurrent
// requests with the same key cannot both publish; it holds a lease, and a request that finds an
// expired lease (its owner died between reserving and completing) takes the key over.
const (
	StatePending = "pending"
	StateDone    = "done"
)

// Defaults of Service.
const (
	DefaultKeyTTL      = 24 * time.Hour
	DefaultLease       = 30 * time.Second
	DefaultSendTimeout = 10 * time.Second
)

// Service accepts feedback: it checks the partner named in the body, reserves idempotency keys,
// publishes the events of one request in one Sender.Send call, and only then records the answer.
// Safe for concurrent use.
type Service struct {
	Sender Sender
	Keys   docstore.Collection[Record]
	Log    *slog.Logger
	Now    func() time.Time
	NewID  func() string // event ids of plain JSON requests without Idempotency-Key
	// KeyTTL is how long an answer is remembered (24 h), Lease how long a reservation blocks
	// other requests with its key, SendTimeout the budget of one publish (less than Lease).
	KeyTTL, Lease, SendTimeout time.Duration
}

// Result is the answer to one request: the event id of each submission, in request order.
type Result struct {
	IDs []string
	// Replayed counts the submissions answered from the idempotency store (published earlier).
	Replayed int
}

type claimState int

const (
	claimedNew claimState = iota + 1
	claimedReplay
)

type item struct {
	built
	state claimState
	etag  docstore.ETag
}

// Submit accepts subs from partner (all or nothing). Errors: ErrForbidden when the body names
// another partner; ErrKeyReused or *InProgressError for a key in use; a Sender error (wrapping
// publish.ErrNotDelivered / publish.ErrRejected) or a store error otherwise. On any error no
// answer is recorded, so a retry of the same request publishes again with the same event ids.
//
// When the events of one request span several partition keys the sender makes one batch per key;
// if a later batch fails, the earlier ones are out. The request still fails and records nothing:
// the partner's retry re-publishes every event with the same ids, and consumers de-duplicate by id.
func (s *Service) Submit(ctx context.Context, partner string, subs []Submission) (Result, error) {
	for i, sub := range subs {
		for _, c := range sub.claimed {
			if !strings.EqualFold(c, partner) {
				return Result{}, fmt.Errorf("feedback.Submit(%s): %w: submission %d names partner %q", partner, ErrForbidden, i, c)
			}
		}
	}
	now := s.now()
	items := make([]item, len(subs))
	for i := range subs {
		id := ""
		if subs[i].Key != "" {
			id = EventID(partner, subs[i].Key)
		} else {
			id = s.newID()
		}
		b, err := subs[i].build(partner, id, now)
		if err != nil {
			return Result{}, fmt.Errorf("feedback.Submit(%s): %w", partner, err)
		}
		items[i] = item{built: b, state: claimedNew}
	}

	var reserved []int
	release := func() {
		// Undo the reservations even if the caller went away, so a retry is not told "in progress".
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, i := range reserved {
			if err := s.Keys.Delete(rctx, partner, items[i].event.ID()); err != nil {
				s.log().Warn("idempotency reservation not released; it expires with its lease",
					"partner", partner, "eventId", items[i].event.ID(), "error", err.Error())
			}
		}
	}
	for i := range items {
		if subs[i].Key == "" {
			continue
		}
		st, etag, err := s.claim(ctx, partner, subs[i].Key, items[i], now)
		if err != nil {
			release()
			return Result{}, fmt.Errorf("feedback.Submit(%s): %w", partner, err)
		}
		items[i].state, items[i].etag = st, etag
		if st == claimedNew {
			reserved = append(reserved, i)
		}
	}

	out := make([]event.Event, 0, len(items))
	for i := range items {
		if items[i].state == claimedNew {
			out = append(out, items[i].event)
		}
	}
	if len(out) > 0 {
		sctx, cancel := context.WithTimeout(ctx, s.sendTimeout())
		err := s.Sender.Send(sctx, out)
		cancel()
		if err != nil {
			release()
			return Result{}, fmt.Errorf("feedback.Submit(%s): publish %d event(s): %w", partner, len(out), err)
		}
	}

	done := s.now()
	for _, i := range reserved {
		rec := s.record(partner, subs[i].Key, items[i].built, StateDone, done)
		if _, err := s.Keys.Put(ctx, partner, rec.ID, rec, docstore.PutOptions{IfMatch: items[i].etag, TTL: s.keyTTL()}); err != nil {
			// Published but not recorded: the reservation stays until its lease ends, then a retry
			// would publish the same event id again (consumers de-duplicate by id). Accepting is
			// still the right answer: the feedback is out.
			s.log().Warn("idempotency answer not recorded", "partner", partner, "eventId", rec.ID, "error", err.Error())
		}
	}
	res := Result{IDs: make([]string, len(items))}
	for i := range items {
		res.IDs[i] = items[i].event.ID()
		if items[i].state == claimedReplay {
			res.Replayed++
		}
	}
	return res, nil
}

// claim reserves key for it, or finds the answer already given for it. It costs one write for a new
// key (the common case) and one read for a replay.
func (s *Service) claim(ctx context.Context, partner, key string, it item, now time.Time) (claimState, docstore.ETag, error) {
	pending := s.record(partner, key, it.built, StatePending, now)
	pending.LeaseUntil = now.Add(s.lease())
	opts := docstore.PutOptions{IfNoneMatch: true, TTL: s.keyTTL()}
	for range 3 {
		etag, err := s.Keys.Put(ctx, partner, pending.ID, pending, opts)
		if err == nil {
			return claimedNew, etag, nil
		}
		if !errors.Is(err, docstore.ErrConflict) && !errors.Is(err, docstore.ErrNotFound) {
			return 0, "", fmt.Errorf("reserve idempotency key: %w", err)
		}
		rec, etag, err := s.Keys.Get(ctx, partner, pending.ID)
		if errors.Is(err, docstore.ErrNotFound) {
			opts = docstore.PutOptions{IfNoneMatch: true, TTL: s.keyTTL()} // released or expired meanwhile
			continue
		}
		if err != nil {
			return 0, "", fmt.Errorf("read idempotency key: %w", err)
		}
		switch {
		case rec.Fingerprint != it.fingerprint:
			return 0, "", fmt.Errorf("%w: %q", ErrKeyReused, key)
		case rec.State == StateDone:
			return claimedReplay, etag, nil
		case now.Before(rec.LeaseUntil):
			return 0, "", &InProgressError{Key: key, RetryAfter: rec.LeaseUntil.Sub(now)}
		}
		// A stale reservation: the request that made it died before completing. Take it over.
		opts = docstore.PutOptions{IfMatch: etag, TTL: s.keyTTL()}
	}
	return 0, "", &InProgressError{Key: key, RetryAfter: time.Second}
}

func (s *Service) record(partner, key string, b built, state string, now time.Time) Record {
	r := Record{ID: b.event.ID(), PartnerID: partner, Key: key, Fingerprint: b.fingerprint, State: state}
	if state == StateDone {
		r.AcceptedAt = now.UTC()
	}
	return r
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) newID() string {
	if s.NewID != nil {
		return s.NewID()
	}
	return uuid.NewString()
}

func (s *Service) keyTTL() time.Duration {
	if s.KeyTTL > 0 {
		return s.KeyTTL
	}
	return DefaultKeyTTL
}

func (s *Service) lease() time.Duration {
	if s.Lease > 0 {
		return s.Lease
	}
	return DefaultLease
}

func (s *Service) sendTimeout() time.Duration {
	if s.SendTimeout > 0 {
		return s.SendTimeout
	}
	return DefaultSendTimeout
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}
