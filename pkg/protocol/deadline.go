package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultFunctionTimeout is the host's functionTimeout when host.json sets none (30 minutes on Flex
// Consumption, Premium and Dedicated plans; 5 on the legacy Consumption plan, where host.json must
// set it).
const DefaultFunctionTimeout = 30 * time.Minute

// Budget is the time of one invocation, derived from the host's functionTimeout T. The host fails an
// invocation that has not answered after T and restarts the handler, and the Event Hubs trigger then
// checkpoints the batch after its retries: an answer after T is no answer. So each invocation runs
// under deadlines inside T:
//
//   - at Work (0.75 T) its context ends: store calls give up, and the function settles the batch as
//     on a store failure (pkg/delivery): it fails for the retry, or parks it on the last attempt;
//   - at Overdue (0.85 T) a function that has still not returned (a call that ignores its context) is
//     left running and, on the last attempt, its Overdue hook parks the invocation's input, so the
//     checkpoint never passes events that were not saved; before the last attempt it fails;
//   - by Park (0.95 T) that parking must be done; the rest is margin for the reply to reach the host.
//
// A zero FunctionTimeout means no deadline (functionTimeout -1).
type Budget struct {
	FunctionTimeout time.Duration
}

func (b Budget) part(f float64) time.Duration { return time.Duration(float64(b.FunctionTimeout) * f) }

// Work is when an invocation's context ends.
func (b Budget) Work() time.Duration { return b.part(0.75) }

// Overdue is when a function that has not returned is parked (last attempt) or failed.
func (b Budget) Overdue() time.Duration { return b.part(0.85) }

// Park is when parking must be done.
func (b Budget) Park() time.Duration { return b.part(0.95) }

// LoadFunctionTimeout reads functionTimeout from dir/host.json. found is false when the file does not
// exist (the handler started by hand); an unbounded timeout (-1) is returned as 0.
func LoadFunctionTimeout(dir string) (timeout time.Duration, found bool, err error) {
	path := filepath.Join(dir, "host.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return DefaultFunctionTimeout, false, nil
	} else if err != nil {
		return 0, false, err
	}
	var h struct {
		FunctionTimeout *string `json:"functionTimeout"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return 0, true, fmt.Errorf("%s: %v", path, err)
	}
	if h.FunctionTimeout == nil {
		return DefaultFunctionTimeout, true, nil
	}
	d, err := ParseTimeSpan(*h.FunctionTimeout)
	if err != nil {
		return 0, true, fmt.Errorf("%s: functionTimeout: %v", path, err)
	}
	return d, true, nil
}

// ParseTimeSpan parses the .NET TimeSpan text host.json uses ("[d.]hh:mm:ss[.fffffff]"); "-1" (and
// any negative span) is unbounded and returns 0.
func ParseTimeSpan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "-1" || strings.HasPrefix(s, "-") {
		return 0, nil
	}
	bad := fmt.Errorf("%q is not a time span like 00:10:00", s)
	days := 0
	if i := strings.IndexByte(s, '.'); i >= 0 && i < strings.IndexByte(s, ':') {
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			return 0, bad
		}
		days, s = n, s[i+1:]
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, bad
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec >= 60 {
		return 0, bad
	}
	d := time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(sec*float64(time.Second))
	if d <= 0 {
		return 0, bad
	}
	return d, nil
}
