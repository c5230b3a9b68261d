// Package jobs owns the batch work that feeds on the event pipeline's Capture of the clickstream: the
// daily rollup (per product views, unique viewers, sessions, add-to-cart and purchase counts with
// conversion, written as reports/daily/<day>/products.csv and summary.json), the "viewed together"
// recommendations, the job state that makes both idempotent and resumable, and the
// com.contoso.batch.job.completed event that announces each finished day.
//
// The work is cut per Capture file so that the event-driven path and the timer share it:
//   - ProcessFile reads one Capture file (streaming) into a partial aggregate, stores it (reports
//     container, partials/...) and records the file as processed in the job state. CaptureFileCreated
//     calls it when Event Grid announces a file; RunDay calls it for files nobody processed yet.
//   - RunDay merges the partial aggregates of every file of a UTC day, in a fixed order, writes the
//     reports, updates the recommendations, publishes the completion event and marks the day
//     completed. Scheduled is the daily timer: the previous day, plus bounded catch-up.
//
// Every step can be repeated: a processed file is not read again (unless asked), the reports are a
// function of the day's files only (same files, same bytes), recommendations are recomputed from the
// state before the day (never applied twice), and the completion event id is derived from the job
// and the day. A crash at any point leaves state from which a re-run finishes the day.
//
// Errors: ErrCorrupt files (capture.ErrCorrupt) are dead-lettered with the file name and reason and
// left out of the day; every other error is transient and fails the invocation (the host or Event
// Grid retries; processed files are kept).
package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/pkg/deadletter"
)

// Names of the job and its event.
const (
	// JobRollup is the daily rollup's name in job state, reports and events.
	JobRollup = "clickstream-rollup"
	// TypeJobCompleted is the type of the completion event (docs/schemas/com.contoso.batch.job.completed.v1.json).
	TypeJobCompleted = "com.contoso.batch.job.completed"
	// EventSource is the CloudEvents source of batch events.
	EventSource = "/contoso/batch"
)

// Error kinds.
var (
	// ErrNotFound: no such object, state or recommendation.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a day, product id or parameter that is not acceptable.
	ErrInvalid = errors.New("invalid")
)

// Objects is a container of named blobs: the reports container (Blob in Azure, a directory under
// LOCAL_DATA_DIR locally). Put overwrites.
type Objects interface {
	Put(ctx context.Context, name string, data []byte, contentType string) error
	// Get returns an object's bytes, or an error wrapping ErrNotFound.
	Get(ctx context.Context, name string) ([]byte, error)
	// URL is where consumers read the object (the completion event's outputs).
	URL(name string) string
}

// Publisher publishes the completion event: before the last attempt a failure is returned (the
// invocation fails and is retried); on the last attempt the event is parked in the outbox and nil is
// returned. publish.Publisher is the implementation.
type Publisher interface {
	Publish(ctx context.Context, events []event.Event, lastAttempt bool) error
}

// DeadLetters keeps the record of a corrupt Capture file. deadletter.Store is the implementation.
type DeadLetters interface {
	Put(ctx context.Context, recs ...deadletter.Record) error
}

// Config tunes the rollup and the recommendations. The zero value of a field means its default.
type Config struct {
	// Hub is the captured event hub (default "clickstream").
	Hub string
	// CatchUpDays bounds how many days back a timer run that fired past due completes missed or
	// unfinished days (default 7, the previous day included).
	CatchUpDays int
	// Budget is how long one timer run keeps starting days (default 7 minutes, inside host.json's
	// 10-minute functionTimeout); the rest are left pending for the next run.
	Budget time.Duration
	// SessionGap closes a session that had no view for that long (default 30 minutes), for "viewed
	// together".
	SessionGap time.Duration
	// MaxSessionProducts: a session that viewed more distinct products than this (a crawler) does not
	// count for "viewed together" (default 50).
	MaxSessionProducts int
	// Candidates is how many co-viewed products are counted per product per day (Space-Saving
	// capacity, default 64): counts are exact for a product viewed with at most that many others.
	Candidates int
	// HalfLife of a co-view's weight (default 7 days): a day's count weighs 2^(-age/HalfLife).
	HalfLife time.Duration
	// MinSupport is the smallest decayed score a recommendation needs (default 3: three sessions
	// today, or the equivalent from decayed earlier days).
	MinSupport float64
	// Keep is how many scored candidates a product keeps between days (default 50); candidates whose
	// score decays below PruneBelow (default 0.5) are dropped.
	Keep       int
	PruneBelow float64
	// Items is the most recommendations served per product (default 20).
	Items int
	// Concurrency bounds parallel recommendation writes (default 1; more hides Cosmos DB latency).
	Concurrency int
	// TTLs of the documents written: file states (default 35 days), day states (400 days),
	// recommendations (90 days after the last day that touched them).
	FileStateTTL, DayStateTTL, RecommendationTTL time.Duration
}

// Defaults.
const (
	DefaultCatchUpDays        = 7
	DefaultBudget             = 7 * time.Minute
	DefaultSessionGap         = 30 * time.Minute
	DefaultMaxSessionProducts = 50
	DefaultCandidates         = 64
	DefaultHalfLife           = 7 * 24 * time.Hour
	DefaultMinSupport         = 3
	DefaultKeep               = 50
	DefaultPruneBelow         = 0.5
	DefaultItems              = 20
)

func (c Config) withDefaults() Config {
	if c.Hub == "" {
		c.Hub = "clickstream"
	}
	setInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	setInt(&c.CatchUpDays, DefaultCatchUpDays)
	setDur(&c.Budget, DefaultBudget)
	setDur(&c.SessionGap, DefaultSessionGap)
	setInt(&c.MaxSessionProducts, DefaultMaxSessionProducts)
	setInt(&c.Candidates, DefaultCandidates)
	setDur(&c.HalfLife, DefaultHalfLife)
	if c.MinSupport <= 0 {
		c.MinSupport = DefaultMinSupport
	}
	setInt(&c.Keep, DefaultKeep)
	if c.PruneBelow <= 0 {
		c.PruneBelow = DefaultPruneBelow
	}
	setInt(&c.Items, DefaultItems)
	setInt(&c.Concurrency, 1)
	setDur(&c.FileStateTTL, 35*24*time.Hour)
	setDur(&c.DayStateTTL, 400*24*time.Hour)
	setDur(&c.RecommendationTTL, 90*24*time.Hour)
	return c
}

// DayLayout is how a day is written in names, documents and commands.
const DayLayout = "2006-01-02"

// ParseDay reads a YYYY-MM-DD day (UTC).
func ParseDay(s string) (time.Time, error) {
	d, err := time.Parse(DayLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: day %q is not YYYY-MM-DD", ErrInvalid, s)
	}
	return d.UTC(), nil
}

func dayString(d time.Time) string { return d.UTC().Format(DayLayout) }

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("jobs.%s: %w", op, err)
}
