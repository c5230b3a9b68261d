package capture

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// DayWriter writes a stream of events, in enqueued-time order, into Capture files under a Dir the way
// Capture does: one file per partition and capture window, closed when the window ends. Sequence
// numbers are assigned per partition. The local run, the benchmarks and cmd/capturebench use it.
type DayWriter struct {
	dir       Dir
	namespace string
	hub       string
	window    time.Duration
	opts      WriterOptions
	open      map[int]*dayFile
	seq       map[int]int64
	files     int
	events    int64
}

type dayFile struct {
	f      *os.File
	w      *Writer
	window time.Time
}

// NewDayWriter writes under dir for namespace/hub with capture windows of the given length
// (infra/ configures 300 seconds).
func NewDayWriter(dir Dir, namespace, hub string, window time.Duration, opts WriterOptions) (*DayWriter, error) {
	if window < time.Second {
		return nil, fmt.Errorf("capture.NewDayWriter: window %s is shorter than a second", window)
	}
	return &DayWriter{dir: dir, namespace: namespace, hub: hub, window: window, opts: opts,
		open: map[int]*dayFile{}, seq: map[int]int64{}}, nil
}

// Write appends e to the current file of partition, starting a new file when e's enqueued time is
// in a later window. Times must not go back to an earlier window of the partition.
func (d *DayWriter) Write(partition int, e Event) error {
	w := e.EnqueuedTime.UTC().Truncate(d.window)
	cur := d.open[partition]
	if cur != nil && w.Before(cur.window) {
		return fmt.Errorf("capture.DayWriter: partition %d: event at %s is before the open window %s", partition, e.EnqueuedTime, cur.window)
	}
	if cur == nil || w.After(cur.window) {
		if cur != nil {
			if err := cur.close(); err != nil {
				return err
			}
		}
		p := Path{Namespace: d.namespace, EventHub: d.hub, Partition: strconv.Itoa(partition), Window: w}
		f, err := d.dir.Create(p)
		if err != nil {
			return fmt.Errorf("capture.DayWriter: %w", err)
		}
		fw, err := NewWriter(f, d.opts)
		if err != nil {
			f.Close()
			return err
		}
		cur = &dayFile{f: f, w: fw, window: w}
		d.open[partition] = cur
		d.files++
	}
	e.SequenceNumber = d.seq[partition]
	d.seq[partition]++
	if e.Offset == "" || e.Offset == "0" {
		e.Offset = strconv.FormatInt(e.SequenceNumber*1024, 10)
	}
	d.events++
	return cur.w.Write(e)
}

func (f *dayFile) close() error {
	return errors.Join(f.w.Close(), f.f.Close())
}

// Close closes every open file.
func (d *DayWriter) Close() error {
	var errs []error
	for p, f := range d.open {
		errs = append(errs, f.close())
		delete(d.open, p)
	}
	return errors.Join(errs...)
}

// Files is how many files were started; Events how many events written.
func (d *DayWriter) Files() int    { return d.files }
func (d *DayWriter) Events() int64 { return d.events }
