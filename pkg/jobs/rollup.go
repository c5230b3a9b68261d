package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/contoso/eventpipeline/pkg/capture"
	"github.com/contoso/eventpipeline/pkg/clickstream"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/docstore"
)

// DeadLetterFunction is the function name of the dead-letter records of corrupt Capture files,
// whichever trigger found them (one record per file).
const DeadLetterFunction = "CaptureRollup"

// Rollup runs the daily clickstream rollup.
type Rollup struct {
	Source capture.Source
	// Container is the Capture container's name (for dead-letter records and logs).
	Container   string
	Reports     Objects
	Stores      Stores
	DeadLetters DeadLetters
	Publisher   Publisher
	Config      Config
	Now         func() time.Time
	Log         *slog.Logger
}

func (j *Rollup) cfg() Config { return j.Config.withDefaults() }

func (j *Rollup) now() time.Time {
	if j.Now == nil {
		return time.Now().UTC()
	}
	return j.Now().UTC()
}

func (j *Rollup) log() *slog.Logger {
	if j.Log == nil {
		return slog.Default()
	}
	return j.Log
}

// FileOptions tune ProcessFile.
type FileOptions struct {
	// Reprocess reads the file even if it was processed (after a fix, or `handler rollup -reprocess`).
	Reprocess bool
	// Announced is CaptureFileCreated's eventCount (-1: none).
	Announced int64
	// By is the function reading the file (kept in its state).
	By           string
	InvocationID string
	// CheckDay marks the file's day stale when it was completed without this file (a late
	// CaptureFileCreated), for the next timer run to complete it again.
	CheckDay bool
}

// ProcessFile makes f's partial aggregate and records the file in the job state; a processed or
// corrupt file is not read again unless opts.Reprocess. A corrupt file is dead-lettered (file name and
// reason) and recorded as corrupt: the result is its state and a nil error. A file that is gone is an
// error wrapping ErrNotFound (also dead-lettered). Any other error is transient.
//
// The partial is returned when the file was read now (nil when it was already processed).
func (j *Rollup) ProcessFile(ctx context.Context, f capture.File, opts FileOptions) (FileState, *Partial, error) {
	day := f.Path.Day()
	id := fileID(f.Name)
	if !opts.Reprocess {
		st, _, err := j.Stores.Files.Get(ctx, filePK(day), id)
		switch {
		case err == nil && (st.Status == FileProcessed || st.Status == FileCorrupt):
			return st, nil, nil
		case err != nil && !errors.Is(err, docstore.ErrNotFound):
			return FileState{}, nil, wrap("ProcessFile("+f.Name+")", err)
		}
	}
	st := FileState{ID: id, Job: filePK(day), Day: dayString(day), Name: f.Name, Partition: f.Path.Partition,
		Window: f.Path.Window, Size: f.Size, By: opts.By}
	part, err := j.read(ctx, f, opts)
	switch {
	case errors.Is(err, capture.ErrCorrupt):
		st.Status, st.Reason, st.ProcessedAt = FileCorrupt, err.Error(), j.now()
		if err := j.deadLetter(ctx, f, st.Reason, opts); err != nil {
			return FileState{}, nil, wrap("ProcessFile("+f.Name+")", err)
		}
		if err := j.putFile(ctx, st); err != nil {
			return FileState{}, nil, err
		}
		j.log().Warn("corrupt Capture file dead-lettered; the day is processed without it", "file", f.Name, "reason", st.Reason)
		return st, nil, nil
	case errors.Is(err, capture.ErrNotFound):
		if derr := j.deadLetter(ctx, f, "the file is not in the Capture container: "+err.Error(), opts); derr != nil {
			return FileState{}, nil, wrap("ProcessFile("+f.Name+")", derr)
		}
		return FileState{}, nil, fmt.Errorf("jobs.ProcessFile(%s): %w", f.Name, ErrNotFound)
	case err != nil:
		return FileState{}, nil, wrap("ProcessFile("+f.Name+")", err)
	}
	b, err := part.encode()
	if err != nil {
		return FileState{}, nil, wrap("ProcessFile", err)
	}
	st.Status, st.Partial, st.Counts, st.ProcessedAt = FileProcessed, partialName(day, id), part.Counts, j.now()
	// The partial first: a processed state always has its partial.
	if err := j.Reports.Put(ctx, st.Partial, b, "application/octet-stream"); err != nil {
		return FileState{}, nil, wrap("ProcessFile("+f.Name+"): store partial", err)
	}
	if err := j.putFile(ctx, st); err != nil {
		return FileState{}, nil, err
	}
	if opts.CheckDay {
		if err := j.markStale(ctx, day, st.ProcessedAt); err != nil {
			return st, part, err
		}
	}
	return st, part, nil
}

func (j *Rollup) putFile(ctx context.Context, st FileState) error {
	if _, err := j.Stores.Files.Put(ctx, st.Job, st.ID, st, docstore.PutOptions{TTL: j.cfg().FileStateTTL}); err != nil {
		return wrap("ProcessFile("+st.Name+"): save state", err)
	}
	return nil
}

// decodeChunk is how many records are decoded together (clickstream.Decode's batch).
const decodeChunk = 512

// read streams the file into a partial aggregate, decoding clicks with the streaming functions'
// decoder (clickstream.Decode).
func (j *Rollup) read(ctx context.Context, f capture.File, opts FileOptions) (*Partial, error) {
	rc, size, err := j.Source.Open(ctx, f.Name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size <= 0 {
		size = f.Size
	}
	rd, err := capture.NewReader(rc, capture.ReaderOptions{Size: size})
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	src := clickstream.Source{Function: DeadLetterFunction, Name: "capture/" + j.Container + "/" + f.Name, InvocationID: opts.InvocationID}
	b := newBuilder()
	defer b.release()
	recs := make([]capture.Record, decodeChunk)
	raws := make([]clickstream.Raw, decodeChunk)
	now := j.now()
	for {
		n := rd.NextBatch(recs)
		if n == 0 {
			break
		}
		// The bodies live until the next batch: clickstream.Decode copies what it keeps.
		for i := range n {
			raws[i] = recs[i].Raw(f.Path.Partition)
		}
		b.add(clickstream.Decode(src, raws[:n], now))
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if err := rd.Err(); err != nil {
		return nil, err
	}
	b.counts.Events = rd.Records()
	b.counts.Announced = opts.Announced
	return b.finish(f.Name, f.Path.Partition, f.Path.Window), nil
}

// deadLetter records a file that cannot be read. The record's id derives from the file name, so
// finding the same file twice keeps one record.
func (j *Rollup) deadLetter(ctx context.Context, f capture.File, reason string, opts FileOptions) error {
	body, _ := json.Marshal(map[string]any{"container": j.Container, "name": f.Name, "size": f.Size})
	rec := deadletter.Record{ID: deadletter.RecordID(DeadLetterFunction, f.Path.Partition, -1, []byte(f.Name)),
		Function: DeadLetterFunction, Kind: deadletter.KindPoison, Reason: "Capture file " + f.Name + ": " + reason,
		Source: "capture/" + j.Container + "/" + f.Name, Partition: f.Path.Partition, SequenceNumber: -1,
		InvocationID: opts.InvocationID, DeadLettered: j.now()}
	rec.SetBody(body)
	if j.DeadLetters == nil {
		return errors.New("no dead-letter store")
	}
	return j.DeadLetters.Put(ctx, rec)
}

// markStale flags a completed day that was listed before processedAt: its reports miss the file.
func (j *Rollup) markStale(ctx context.Context, day time.Time, processedAt time.Time) error {
	for range 3 {
		ds, etag, err := j.Stores.Days.Get(ctx, dayPK(), dayString(day))
		if errors.Is(err, docstore.ErrNotFound) {
			return nil
		} else if err != nil {
			return wrap("markStale", err)
		}
		if ds.Status != DayCompleted || ds.Stale || !ds.ListedAt.Before(processedAt) {
			return nil
		}
		ds.Stale = true
		_, err = j.Stores.Days.Put(ctx, dayPK(), ds.ID, ds, docstore.PutOptions{IfMatch: etag, TTL: j.cfg().DayStateTTL})
		if err == nil {
			j.log().Info("late Capture file: the completed day will be completed again by the next timer run", "day", ds.Day)
			return nil
		}
		if !errors.Is(err, docstore.ErrConflict) {
			return wrap("markStale", err)
		}
	}
	return wrap("markStale", docstore.ErrConflict)
}

// RunOptions tune RunDay.
type RunOptions struct {
	// Rerun completes a completed day again: the same reports, recommendations recomputed for the
	// day, the completion event published again with its id.
	Rerun bool
	// Reprocess also reads every Capture file of the day again (implies Rerun).
	Reprocess bool
	// LastAttempt is the invocation's: a completion event that cannot be delivered is parked.
	LastAttempt  bool
	By           string
	InvocationID string
}

// DayResult describes one RunDay.
type DayResult struct {
	Day    string `json:"day"`
	Status string `json:"status"` // completed, or already-completed
	RunID  string `json:"runId,omitempty"`
	// Files merged; Read now (the rest came from stored partials); Corrupt files left out; Missing
	// files listed but gone.
	Files, Read, Corrupt, Missing int
	Counts                        map[string]int64
	Recommendations               RecommendationStats
	Outputs                       []Output
	Duration                      time.Duration
	EventID                       string
}

// Status of a RunDay that found the day done.
const AlreadyCompleted = "already-completed"

// RunDay completes a UTC day: reads the files not processed yet, merges every file's partial in
// capture.Less order, writes products.csv and summary.json, applies the recommendations, publishes
// com.contoso.batch.job.completed and marks the day completed. A completed day is left alone unless
// it is stale or opts asks for a re-run.
func (j *Rollup) RunDay(ctx context.Context, day time.Time, opts RunOptions) (DayResult, error) {
	cfg := j.cfg()
	start := j.now()
	day = capture.Day(day)
	res := DayResult{Day: dayString(day)}
	if day.AddDate(0, 0, 1).After(start) {
		return res, fmt.Errorf("jobs.RunDay(%s): %w: the day is not over yet (UTC)", res.Day, ErrInvalid)
	}
	ds, etag, err := j.Stores.Days.Get(ctx, dayPK(), res.Day)
	isNew := errors.Is(err, docstore.ErrNotFound)
	if err != nil && !isNew {
		return res, wrap("RunDay("+res.Day+")", err)
	}
	if !isNew && ds.Status == DayCompleted && !ds.Stale && !opts.Rerun && !opts.Reprocess {
		res.Status, res.RunID = AlreadyCompleted, ds.RunID
		return res, nil
	}
	if isNew || ds.Status != DayRunning || ds.RunID == "" {
		ds = DayState{ID: res.Day, Job: JobRollup, Day: res.Day, RunID: uuid.NewString(), StartedAt: start, Attempts: ds.Attempts,
			Stale: ds.Stale, Completed: ds.Completed, CompletedAt: ds.CompletedAt}
	}
	ds.Status, ds.LastError = DayRunning, ""
	ds.Attempts++
	res.RunID = ds.RunID
	put := docstore.PutOptions{IfMatch: etag, IfNoneMatch: isNew, TTL: cfg.DayStateTTL}
	if etag, err = j.Stores.Days.Put(ctx, dayPK(), ds.ID, ds, put); err != nil {
		if errors.Is(err, docstore.ErrConflict) {
			return res, fmt.Errorf("jobs.RunDay(%s): another run changed the day concurrently; retry: %w", res.Day, err)
		}
		return res, wrap("RunDay("+res.Day+")", err)
	}
	fail := func(err error) (DayResult, error) {
		ds.LastError = err.Error()
		if _, perr := j.Stores.Days.Put(ctx, dayPK(), ds.ID, ds, docstore.PutOptions{IfMatch: etag, TTL: cfg.DayStateTTL}); perr != nil {
			j.log().Warn("could not record the day's error", "day", res.Day, "error", perr.Error())
		}
		return res, fmt.Errorf("jobs.RunDay(%s): %w", res.Day, err)
	}

	files, err := j.Source.List(ctx, cfg.Hub, day)
	if err != nil {
		return fail(fmt.Errorf("list Capture files: %w", err))
	}
	ds.ListedAt = j.now()
	files, err = j.withProcessed(ctx, day, files)
	if err != nil {
		return fail(err)
	}

	m := newMerger(cfg)
	var corrupt, mismatched []string
	merged := make(map[string]bool, len(files))
	for _, f := range files {
		merged[f.Name] = true
		st, part, err := j.ProcessFile(ctx, f, FileOptions{Reprocess: opts.Reprocess, Announced: -1, By: opts.By, InvocationID: opts.InvocationID})
		if errors.Is(err, ErrNotFound) {
			res.Missing++
			continue
		}
		if err != nil {
			return fail(err)
		}
		if st.Status == FileCorrupt {
			corrupt = append(corrupt, st.Name)
			continue
		}
		if part != nil {
			res.Read++
		} else if part, err = j.loadPartial(ctx, f, st, opts); err != nil {
			return fail(err)
		}
		if part.Counts.Announced >= 0 && part.Counts.Announced != part.Counts.Events {
			mismatched = append(mismatched, st.Name)
		}
		m.add(part)
	}
	m.finish()
	res.Files, res.Corrupt = m.files, len(corrupt)

	rep := m.report(day, corrupt, mismatched)
	csvBytes, err := productsCSV(rep.rows)
	if err != nil {
		return fail(err)
	}
	sumBytes, err := rep.summaryJSON()
	if err != nil {
		return fail(err)
	}
	for _, o := range []struct {
		file, ct string
		b        []byte
	}{{"products.csv", "text/csv; charset=utf-8", csvBytes}, {"summary.json", "application/json", sumBytes}} {
		name := reportName(day, o.file)
		if err := j.Reports.Put(ctx, name, o.b, o.ct); err != nil {
			return fail(fmt.Errorf("write %s: %w", name, err))
		}
		res.Outputs = append(res.Outputs, Output{Name: name, URL: j.Reports.URL(name), ContentType: o.ct})
	}

	if res.Recommendations, err = j.applyRecommendations(ctx, day, m); err != nil {
		return fail(err)
	}

	s := rep.summary
	res.Counts = map[string]int64{"files": int64(m.files), "corruptFiles": int64(len(corrupt)), "events": s.Events,
		"clicks": s.Clicks, "views": s.Views, "addedToCart": s.AddedToCart, "purchased": s.Purchased, "skipped": s.Skipped,
		"poison": s.Poison, "products": int64(s.Products), "uniqueViewers": s.UniqueViewers, "sessions": s.Sessions,
		"recommendationsUpdated": int64(res.Recommendations.Updated)}
	res.Duration = j.now().Sub(start)
	done := &Completed{Job: JobRollup, RunID: ds.RunID, Period: s.Period, Outputs: res.Outputs, Counts: res.Counts,
		DurationMs: res.Duration.Milliseconds()}
	ev, err := done.Event(day, j.now())
	if err != nil {
		return fail(err)
	}
	res.EventID = ev.ID()
	if j.Publisher == nil {
		return fail(errors.New("no publisher for the completion event"))
	}
	if err := j.Publisher.Publish(ctx, []event.Event{ev}, opts.LastAttempt); err != nil {
		return fail(fmt.Errorf("publish the completion event: %w", err))
	}

	// A file processed (CaptureFileCreated) after the listing is not in these reports: the day stays
	// stale for the next timer run to complete again.
	late, err := j.lateFiles(ctx, day, merged)
	if err != nil {
		return fail(err)
	}
	ds.Status, ds.CompletedAt, ds.Completed, ds.Stale = DayCompleted, j.now(), done, late > 0
	if late > 0 {
		j.log().Info("files arrived while the day ran; it will be completed again by the next timer run", "day", res.Day, "files", late)
	}
	for range 3 {
		_, err = j.Stores.Days.Put(ctx, dayPK(), ds.ID, ds, docstore.PutOptions{IfMatch: etag, TTL: cfg.DayStateTTL})
		if !errors.Is(err, docstore.ErrConflict) {
			break
		}
		// A late file marked the day stale while it ran: keep the flag for the next run.
		cur, cetag, gerr := j.Stores.Days.Get(ctx, dayPK(), ds.ID)
		if gerr != nil {
			err = gerr
			break
		}
		ds.Stale, etag = cur.Stale, cetag
	}
	if err != nil {
		return res, wrap("RunDay("+res.Day+"): save completion", err)
	}
	res.Status = DayCompleted
	return res, nil
}

// lateFiles counts the day's files in the job state that the run did not merge.
func (j *Rollup) lateFiles(ctx context.Context, day time.Time, merged map[string]bool) (int, error) {
	n := 0
	err := j.Stores.Files.List(ctx, filePK(day), func(_ string, st FileState, _ docstore.ETag) error {
		if !merged[st.Name] {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list processed files: %w", err)
	}
	return n, nil
}

// withProcessed adds the files the job state knows for day but the listing does not show (processed
// from CaptureFileCreated, then deleted from the Capture container), sorted for the merge.
func (j *Rollup) withProcessed(ctx context.Context, day time.Time, files []capture.File) ([]capture.File, error) {
	listed := make(map[string]bool, len(files))
	for _, f := range files {
		listed[f.Name] = true
	}
	err := j.Stores.Files.List(ctx, filePK(day), func(_ string, st FileState, _ docstore.ETag) error {
		if listed[st.Name] || st.Status != FileProcessed {
			return nil
		}
		p, err := capture.ParsePath(st.Name)
		if err != nil {
			return nil
		}
		files = append(files, capture.File{Name: st.Name, Size: st.Size, Path: p})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list processed files: %w", err)
	}
	capture.SortFiles(files)
	return files, nil
}

// loadPartial reads a processed file's stored partial, or reads the file again when the partial is
// gone (lifecycle rule) or of an older version.
func (j *Rollup) loadPartial(ctx context.Context, f capture.File, st FileState, opts RunOptions) (*Partial, error) {
	b, err := j.Reports.Get(ctx, st.Partial)
	if err == nil {
		p, derr := decodePartial(b)
		if derr == nil {
			return p, nil
		}
		if !errors.Is(derr, ErrNotFound) {
			j.log().Warn("stored partial aggregate unreadable; reading the Capture file again", "file", f.Name, "error", derr.Error())
		}
	} else if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("read partial of %s: %w", f.Name, err)
	}
	st2, p, err := j.ProcessFile(ctx, f, FileOptions{Reprocess: true, Announced: st.Counts.Announced, By: opts.By, InvocationID: opts.InvocationID})
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("%s became %s: %s", f.Name, st2.Status, st2.Reason)
	}
	return p, nil
}

// Timer is what the daily timer knows of its schedule.
type Timer struct {
	PastDue bool
	LastRun time.Time // zero when unknown
}

// ScheduledResult describes one timer run.
type ScheduledResult struct {
	Days []DayResult
	// Pending are days left for the next run (the budget ran out, or a day failed on the last attempt).
	Pending []string
}

// Scheduled is the daily timer's run at `now`: it completes the previous UTC day, every day of the
// last CatchUpDays that was started but not completed or was marked stale, and, when the timer fired
// past due (or its last run is more than a day old), the days whose run was missed, within the same
// bound. Days run oldest first until Budget is spent; the rest are recorded as pending and taken by
// the next run.
//
// Failures: before the last attempt the first failing day fails the invocation (completed days are
// not redone by the retry). On the last attempt the failing day is left pending with its error and
// the run succeeds: the next daily run resumes it (within CatchUpDays).
func (j *Rollup) Scheduled(ctx context.Context, now time.Time, t Timer, opts RunOptions) (ScheduledResult, error) {
	cfg := j.cfg()
	var res ScheduledResult
	yesterday := capture.Day(now).AddDate(0, 0, -1)
	oldest := yesterday.AddDate(0, 0, -(cfg.CatchUpDays - 1))
	known := map[string]DayState{}
	if err := j.Stores.Days.List(ctx, dayPK(), func(_ string, ds DayState, _ docstore.ETag) error {
		known[ds.Day] = ds
		return nil
	}); err != nil {
		return res, wrap("Scheduled", err)
	}
	missedFrom := yesterday // nothing missed
	if t.PastDue || (!t.LastRun.IsZero() && now.Sub(t.LastRun) > 36*time.Hour) {
		missedFrom = oldest
		if !t.LastRun.IsZero() && capture.Day(t.LastRun).After(oldest) {
			// The run at LastRun processed the day before it; later days were missed.
			missedFrom = capture.Day(t.LastRun)
		}
	}
	var days []time.Time
	for d := oldest; !d.After(yesterday); d = d.AddDate(0, 0, 1) {
		ds, ok := known[dayString(d)]
		switch {
		case d.Equal(yesterday):
			days = append(days, d)
		case ok && (ds.Status != DayCompleted || ds.Stale):
			days = append(days, d)
		case !ok && !d.Before(missedFrom):
			days = append(days, d)
		}
	}
	// Record every missing day first, so a run cut short (budget, timeout, crash) leaves them pending.
	for _, d := range days {
		if _, ok := known[dayString(d)]; ok {
			continue
		}
		ds := DayState{ID: dayString(d), Job: JobRollup, Day: dayString(d), Status: DayPending}
		if _, err := j.Stores.Days.Put(ctx, dayPK(), ds.ID, ds, docstore.PutOptions{IfNoneMatch: true, TTL: cfg.DayStateTTL}); err != nil && !errors.Is(err, docstore.ErrConflict) {
			return res, wrap("Scheduled", err)
		}
	}
	start := j.now()
	for i, d := range days {
		if i > 0 && j.now().Sub(start) > cfg.Budget {
			for _, rest := range days[i:] {
				res.Pending = append(res.Pending, dayString(rest))
			}
			j.log().Warn("rollup budget spent; remaining days are pending for the next run", "pending", res.Pending)
			break
		}
		r, err := j.RunDay(ctx, d, opts)
		if err != nil {
			if !opts.LastAttempt {
				return res, err
			}
			for _, rest := range days[i:] {
				res.Pending = append(res.Pending, dayString(rest))
			}
			j.log().Error("rollup failed on the last attempt; the day stays pending for the next run", "day", dayString(d), "error", err.Error())
			return res, nil
		}
		res.Days = append(res.Days, r)
	}
	slices.Sort(res.Pending)
	return res, nil
}

// Hub is the captured event hub the rollup reads.
func (j *Rollup) Hub() string { return j.cfg().Hub }
