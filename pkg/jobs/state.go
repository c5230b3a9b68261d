package jobs

import (
	"time"

	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/events"
)

// Job state lives in the Cosmos DB container jobState (partition key /job; the embedded store
// locally). The "job" property, the partition key, holds:
//   - the job name for day documents (pk "clickstream-rollup", id "2026-11-24"): one small partition
//     the timer lists to find unfinished days;
//   - the job and the day for file documents (pk "clickstream-rollup/2026-11-24", id derived from the
//     file name): one partition per day, listed by the day's merge.

// Day statuses.
const (
	DayPending   = "pending"   // known to need a run (catch-up), not started
	DayRunning   = "running"   // started, not completed (a crash or a failure leaves it so)
	DayCompleted = "completed" // reports written, recommendations applied, event published
)

// DayState is one day of the rollup.
type DayState struct {
	ID     string `json:"id"`  // the day, YYYY-MM-DD
	Job    string `json:"job"` // partition key: JobRollup
	Day    string `json:"day"`
	Status string `json:"status"`
	// RunID names the run that started the day (kept by retries and resumed runs).
	RunID     string    `json:"runId"`
	StartedAt time.Time `json:"startedAt"`
	// ListedAt is when the run listed the day's Capture files. A file processed after it (a late
	// CaptureFileCreated) marks a completed day Stale, and the next timer run completes it again.
	ListedAt    time.Time  `json:"listedAt,omitzero"`
	CompletedAt time.Time  `json:"completedAt,omitzero"`
	Stale       bool       `json:"stale,omitempty"`
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"lastError,omitempty"`
	Completed   *Completed `json:"completed,omitempty"` // the completion event's data
}

// File statuses.
const (
	FileProcessed = "processed"
	FileCorrupt   = "corrupt"
)

// FileState is one Capture file of a day.
type FileState struct {
	ID          string     `json:"id"`
	Job         string     `json:"job"` // partition key: JobRollup/<day>
	Day         string     `json:"day"`
	Name        string     `json:"name"` // blob name in the Capture container
	Partition   string     `json:"partition"`
	Window      time.Time  `json:"window"`
	Size        int64      `json:"size"`
	Status      string     `json:"status"`
	Reason      string     `json:"reason,omitempty"`  // why a file is corrupt
	Partial     string     `json:"partial,omitempty"` // object name of its partial aggregate
	Counts      FileCounts `json:"counts"`
	ProcessedAt time.Time  `json:"processedAt"`
	By          string     `json:"by"` // the function that read it
}

// Stores are the documents of the rollup and the recommendations.
type Stores struct {
	Days            docstore.Collection[DayState]
	Files           docstore.Collection[FileState]
	Recommendations docstore.Collection[Recommendation]
}

func dayPK() string               { return JobRollup }
func filePK(day time.Time) string { return JobRollup + "/" + dayString(day) }
func fileID(name string) string   { return events.DeterministicID("capture-file", name) }
func partialName(day time.Time, id string) string {
	return "partials/" + JobRollup + "/" + dayString(day) + "/" + id + ".bin"
}

// Report names in the reports container.
func reportName(day time.Time, file string) string { return "daily/" + dayString(day) + "/" + file }
