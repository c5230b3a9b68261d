package trends

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/contoso/eventpipeline/pkg/docstore"
)

// Query is a validated GetTrending request.
type Query struct {
	Window   Window
	Limit    int
	Category string // "" = every category
	// At is the instant the window ends at (now when not given). Windows are whole minutes: the
	// window of length W ending at At covers [Minute(At)-W, Minute(At)).
	At time.Time
}

// DefaultLimit is `limit` when not given.
const DefaultLimit = 10

// MaxCategoryLen bounds a category name in a query.
const MaxCategoryLen = 128

// ParamError is one invalid query parameter.
type ParamError struct {
	Param   string
	Message string
}

// QueryError lists the invalid parameters of a query. It is ErrInvalid.
type QueryError []ParamError

func (e QueryError) Error() string {
	parts := make([]string, len(e))
	for i, p := range e {
		parts[i] = p.Param + ": " + p.Message
	}
	return "invalid trending query: " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e QueryError) Is(target error) bool { return target == ErrInvalid }

// ParseQuery validates GetTrending's query parameters (others, such as the function key `code`, are
// ignored): window 15m|1h|24h (default 1h), limit 1..50 (default 10), category (optional, 1 to 128
// bytes of UTF-8, no control characters), at (optional RFC 3339; not in the future, not older than
// retention). Each parameter may be given once. Every problem is reported, not only the first.
func ParseQuery(q url.Values, now time.Time, retention time.Duration) (Query, error) {
	out := Query{Window: Window1h, Limit: DefaultLimit, At: now.UTC()}
	var errs QueryError
	one := func(name string) (string, bool) {
		vs, ok := q[name]
		if !ok {
			return "", false
		}
		if len(vs) > 1 {
			errs = append(errs, ParamError{name, "must be given once"})
			return "", false
		}
		return vs[0], true
	}
	if v, ok := one("window"); ok {
		switch w := Window(v); w {
		case Window15m, Window1h, Window24h:
			out.Window = w
		default:
			errs = append(errs, ParamError{"window", "must be 15m, 1h or 24h, got " + quote(v)})
		}
	}
	if v, ok := one("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			errs = append(errs, ParamError{"limit", "must be an integer from 1 to " + strconv.Itoa(MaxLimit) + ", got " + quote(v)})
		} else {
			out.Limit = n
		}
	}
	if v, ok := one("category"); ok {
		switch {
		case v == "":
			errs = append(errs, ParamError{"category", "must not be empty when given"})
		case len(v) > MaxCategoryLen:
			errs = append(errs, ParamError{"category", "must be at most " + strconv.Itoa(MaxCategoryLen) + " bytes"})
		case !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0:
			errs = append(errs, ParamError{"category", "must be UTF-8 text without control characters"})
		default:
			out.Category = v
		}
	}
	if v, ok := one("at"); ok {
		t, err := time.Parse(time.RFC3339Nano, v)
		switch {
		case err != nil:
			errs = append(errs, ParamError{"at", "must be an RFC 3339 time such as 2026-11-25T12:00:00Z, got " + quote(v)})
		case t.After(now.Add(time.Minute)):
			errs = append(errs, ParamError{"at", "must not be in the future"})
		case t.Before(now.Add(-retention)):
			errs = append(errs, ParamError{"at", "must be within the last " + retention.String()})
		default:
			out.At = t.UTC()
		}
	}
	if len(errs) > 0 {
		return Query{}, errs
	}
	return out, nil
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}

// Result is a GetTrending answer.
type Result struct {
	Window Window
	// AsOf is the end of the window served: Minute(At), or a minute earlier when the snapshot of
	// Minute(At) is not written yet (the timer runs at the start of each minute).
	AsOf   time.Time
	Top    []Entry
	Rising []RisingEntry
	// Reads is the number of point reads this answer cost (1 normally, at most 4).
	Reads int
}

// Trending serves q from the materialized snapshots with point reads only: the snapshot of the
// window ending at Minute(q.At), or the minute before when the timer has not run yet. A category
// without a snapshot of its own is answered from the site snapshot's existence: it had no views.
func (s *Service) Trending(ctx context.Context, q Query) (Result, error) {
	res := Result{Window: q.Window}
	end := Minute(q.At)
	for range 2 {
		snap, found, reads, err := s.snapshot(ctx, q.Window, end, q.Category)
		res.Reads += reads
		if err != nil {
			return res, err
		}
		if found {
			res.AsOf = end
			res.Top = snap.Top
			if len(res.Top) > q.Limit {
				res.Top = res.Top[:q.Limit]
			}
			res.Rising = snap.Rising
			if len(res.Rising) > q.Limit {
				res.Rising = res.Rising[:q.Limit]
			}
			if res.Top == nil {
				res.Top = []Entry{}
			}
			if res.Rising == nil {
				res.Rising = []RisingEntry{}
			}
			return res, nil
		}
		end = end.Add(-time.Minute)
	}
	return res, fmt.Errorf("trends.Trending(%s at %s): %w", q.Window, q.At.Format(time.RFC3339), ErrNotMaterialized)
}

// snapshot reads the snapshot of (w, end, category). found is true with an empty snapshot when the
// category has none but the site snapshot of that minute exists.
func (s *Service) snapshot(ctx context.Context, w Window, end time.Time, category string) (Snapshot, bool, int, error) {
	pk := snapshotPK(w, end)
	snap, _, err := s.Snapshots.Get(ctx, pk, snapshotID(category))
	if err == nil {
		return snap, true, 1, nil
	}
	if !errors.Is(err, docstore.ErrNotFound) {
		return Snapshot{}, false, 1, wrap("Trending", err)
	}
	if category == "" {
		return Snapshot{}, false, 1, nil
	}
	_, _, err = s.Snapshots.Get(ctx, pk, snapshotID(""))
	if errors.Is(err, docstore.ErrNotFound) {
		return Snapshot{}, false, 2, nil
	} else if err != nil {
		return Snapshot{}, false, 2, wrap("Trending", err)
	}
	return Snapshot{Window: w, End: end, Category: category}, true, 2, nil
}

// MinuteCounts are the closed totals of one minute, for anomaly detection.
type MinuteCounts struct {
	Minute     time.Time
	Views      int64
	Categories map[string]int64
	// Closed: the minute is closed and merged final. Missing: it is older than what the
	// materializer covers (no totals exist); it cannot be judged.
	Closed, Missing bool
}

// ClosedMinute returns the totals of minute m once it is closed and merged final. One point read
// (two when the minute has no totals).
func (s *Service) ClosedMinute(ctx context.Context, m time.Time) (MinuteCounts, error) {
	m = Minute(m)
	out := MinuteCounts{Minute: m}
	t, _, err := s.Totals.Get(ctx, minuteTotalsPK(m), minuteKey(m))
	if err == nil {
		out.Closed = t.Final
		if t.Final {
			out.Views, out.Categories = t.Views, t.Categories
		}
		return out, nil
	}
	if !errors.Is(err, docstore.ErrNotFound) {
		return out, wrap("ClosedMinute", err)
	}
	st, _, err := s.State.Get(ctx, statePK, stateID)
	if errors.Is(err, docstore.ErrNotFound) {
		return out, nil
	} else if err != nil {
		return out, wrap("ClosedMinute", err)
	}
	if !m.After(st.MergedThrough) {
		out.Closed, out.Missing = true, true
	}
	return out, nil
}

// Retention is how far back `at` may go: the life of a snapshot.
func (s *Service) Retention() time.Duration { return s.cfg().SnapshotTTL }
