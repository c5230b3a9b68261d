// Package trends owns product-view counting for "what is trending": per Event Hubs partition,
// one-minute event-time buckets of views per product and per category, merged across partitions into
// minute and hour totals, and materialized into per-window snapshots that GetTrending serves with one
// point read.
//
// Counting is exactly-once in effect although delivery is at-least-once. Each partition owns its
// aggregates (document per partition and minute), and each aggregate keeps the runs of sequence
// numbers it has applied (Ranges; its highest is MaxSeq). An event whose sequence number is already in
// the set changes nothing, so replaying a batch, retrying it after a partial failure, or replaying a
// parked event later all count every view once; batches of different partitions touch different
// documents and add up. Writes are conditional on the ETag read (optimistic concurrency).
//
// Lateness is measured per event as enqueued time minus event time, so whether an event is late is a
// property of the event, not of when it is processed: replays and any processing order decide the
// same. Events up to AllowedLateness late land in their own minute; later ones are counted in the
// partition's Late metric (and the invocation log), not in a bucket.
//
// A minute is closed when every known partition has applied events enqueued at or after the minute's
// end plus AllowedLateness, or has been idle (no batch applied) for IdleTimeout. Nothing can be added
// to a closed minute by the normal flow, because anything later would be late; only replayed parked
// events can, and those reopen the minute for the materializer.
package trends

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Config.
const (
	// DefaultAllowedLateness is how late (enqueued time minus event time) a view may be and still be
	// counted in its own minute.
	DefaultAllowedLateness = 10 * time.Minute
	// DefaultIdleTimeout is how long a partition that applies no batch is waited for before minutes
	// close without it (an idle partition has no events to wait for; a stuck one is documented).
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultReopenHorizon bounds how old a minute may be and still take counts (replayed parked
	// events); older views are counted as Expired. It must stay well inside DefaultAggregateTTL so a
	// reopened minute is re-merged from complete aggregates.
	DefaultReopenHorizon = 24 * time.Hour
	// DefaultAggregateTTL is the life of a per-partition aggregate after its last write.
	DefaultAggregateTTL = 48 * time.Hour
	// DefaultTotalsTTL is the life of merged minute and hour totals: a 24h window and the previous
	// 24h it is compared with, plus margin.
	DefaultTotalsTTL = 50 * time.Hour
	// DefaultSnapshotTTL is the life of a materialized snapshot, and so how far back `at` may go.
	DefaultSnapshotTTL = 48 * time.Hour
	// DefaultProgressTTL is the life of a partition's progress document after its last batch. A
	// partition that has applied nothing for that long is no longer waited for at all.
	DefaultProgressTTL = 7 * 24 * time.Hour
)

// Config tunes a Service. The zero value of a field means its default.
type Config struct {
	AllowedLateness time.Duration
	IdleTimeout     time.Duration
	ReopenHorizon   time.Duration
	AggregateTTL    time.Duration
	TotalsTTL       time.Duration
	SnapshotTTL     time.Duration
	ProgressTTL     time.Duration
	// MaxAttempts bounds the optimistic-concurrency attempts of one document (default 5).
	MaxAttempts int
	// MaxCatchUpMinutes bounds how many minutes one materializer run merges (default 180) and
	// MaxCatchUpSnapshots how many snapshot minutes it writes (default 15) after an outage.
	MaxCatchUpMinutes   int
	MaxCatchUpSnapshots int
	// MaxCategories bounds the categories materialized per window (default 200, by views).
	MaxCategories int
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.AllowedLateness, DefaultAllowedLateness)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.ReopenHorizon, DefaultReopenHorizon)
	def(&c.AggregateTTL, DefaultAggregateTTL)
	def(&c.TotalsTTL, DefaultTotalsTTL)
	def(&c.SnapshotTTL, DefaultSnapshotTTL)
	def(&c.ProgressTTL, DefaultProgressTTL)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.MaxCatchUpMinutes <= 0 {
		c.MaxCatchUpMinutes = 180
	}
	if c.MaxCatchUpSnapshots <= 0 {
		c.MaxCatchUpSnapshots = 15
	}
	if c.MaxCategories <= 0 {
		c.MaxCategories = 200
	}
	return c
}

// Error kinds of this package.
var (
	// ErrInvalid: a query parameter or input is not acceptable (the caller's fault).
	ErrInvalid = errors.New("invalid")
	// ErrNotMaterialized: no snapshot exists yet for the requested window (the materializer is
	// behind or has never run); a retry later may succeed.
	ErrNotMaterialized = errors.New("trending not materialized yet")
)

// Document keys. Minutes, hours and days are UTC and written as digits so they sort as text.
const (
	minuteLayout = "200601021504"
	hourLayout   = "2006010215"
	dayLayout    = "20060102"
)

func minuteKey(t time.Time) string { return t.UTC().Format(minuteLayout) }
func hourKey(t time.Time) string   { return t.UTC().Format(hourLayout) }
func dayKey(t time.Time) string    { return t.UTC().Format(dayLayout) }

// Partition keys of the documents (container partition key path /pk). Each kind has its own prefix so
// a List of one partition key never mixes kinds.
func aggregatePK(minute time.Time) string { return "agg|" + minuteKey(minute) }

const progressPK = "progress"

func minuteTotalsPK(minute time.Time) string { return "min|" + hourKey(minute) }
func hourTotalsPK(hour time.Time) string     { return "hour|" + dayKey(hour) }
func snapshotPK(w Window, end time.Time) string {
	return "snap|" + string(w) + "|" + minuteKey(end)
}

const statePK = "state"

// partitionID is the document id of a partition's aggregate and progress ("p3").
func partitionID(partition string) string { return "p" + partition }

// Minute truncates t to its UTC minute.
func Minute(t time.Time) time.Time { return t.UTC().Truncate(time.Minute) }

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("trends.%s: %w", op, err)
}
