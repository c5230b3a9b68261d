package capture

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Path is where Capture writes a file, with Capture's default archive name format
// {Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second} (zero-padded,
// UTC, the start of the capture window) and the ".avro" Capture appends. infra/ sets that format.
type Path struct {
	Namespace string
	EventHub  string
	Partition string
	Window    time.Time // start of the capture window, UTC, whole seconds
}

// Extension is what Capture appends to the archive name.
const Extension = ".avro"

// ParsePath parses a blob name (relative to the container). The ".avro" suffix is optional.
func ParsePath(name string) (Path, error) {
	seg := strings.Split(strings.TrimSuffix(name, Extension), "/")
	if len(seg) != 9 {
		return Path{}, fmt.Errorf("%w: %q is not {Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}", ErrInvalid, name)
	}
	for _, s := range seg[:3] {
		if s == "" || s == "." || s == ".." || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
			return Path{}, fmt.Errorf("%w: %q: bad namespace, event hub or partition segment %q", ErrInvalid, name, s)
		}
	}
	widths := [6]int{4, 2, 2, 2, 2, 2}
	var n [6]int
	for i, w := range widths {
		s := seg[3+i]
		if len(s) != w {
			return Path{}, fmt.Errorf("%w: %q: date segment %q is not %d zero-padded digits", ErrInvalid, name, s, w)
		}
		v, err := strconv.Atoi(s)
		if err != nil || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return Path{}, fmt.Errorf("%w: %q: date segment %q is not a number", ErrInvalid, name, s)
		}
		n[i] = v
	}
	t := time.Date(n[0], time.Month(n[1]), n[2], n[3], n[4], n[5], 0, time.UTC)
	if t.Year() != n[0] || int(t.Month()) != n[1] || t.Day() != n[2] || t.Hour() != n[3] || t.Minute() != n[4] || t.Second() != n[5] {
		return Path{}, fmt.Errorf("%w: %q: no such date and time", ErrInvalid, name)
	}
	return Path{Namespace: seg[0], EventHub: seg[1], Partition: seg[2], Window: t}, nil
}

// Name is the blob name of the file.
func (p Path) Name() string {
	return p.Namespace + "/" + p.EventHub + "/" + p.Partition + "/" + p.Window.UTC().Format("2006/01/02/15/04/05") + Extension
}

// Day is the UTC day of the window: the day whose rollup the file belongs to.
func (p Path) Day() time.Time { return Day(p.Window) }

// DayPrefix is the blob name prefix of one partition's files of day.
func DayPrefix(namespace, hub, partition string, day time.Time) string {
	return namespace + "/" + hub + "/" + partition + "/" + day.UTC().Format("2006/01/02") + "/"
}

// Day truncates t to its UTC day.
func Day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Less orders files for processing: by window, then partition (numerically when both are numbers),
// then namespace and hub. The rollup merges files in this order, so its output does not depend on
// the order files were listed or announced in.
func Less(a, b Path) bool {
	if !a.Window.Equal(b.Window) {
		return a.Window.Before(b.Window)
	}
	if a.Partition != b.Partition {
		x, errA := strconv.Atoi(a.Partition)
		y, errB := strconv.Atoi(b.Partition)
		if errA == nil && errB == nil && x != y {
			return x < y
		}
		return a.Partition < b.Partition
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.EventHub < b.EventHub
}
