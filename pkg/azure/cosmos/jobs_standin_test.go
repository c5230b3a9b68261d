package cosmos

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/pkg/capture"
	"github.com/contoso/eventpipeline/pkg/deadletter/deadlettertest"
	"github.com/contoso/eventpipeline/pkg/jobs"
	"github.com/contoso/eventpipeline/pkg/settings"
)

type nopPublisher struct{ n int }

func (p *nopPublisher) Publish(context.Context, []event.Event, bool) error { p.n++; return nil }

// The rollup's documents (job state, recommendations) as Cosmos DB stores them: ids, partition keys
// (a day's files share "clickstream-rollup/<day>"), listing a day, TTLs; the run is repeated.
func TestRollupDocumentsOnCosmos(t *testing.T) {
	c, db := testClient(t)
	ctx := context.Background()
	if err := c.EnsureContainers(ctx, db, []settings.Container{settings.ContainerJobState, settings.ContainerRecommendations}); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	src := capture.Dir{Root: filepath.Join(dir, "capture")}
	w, err := capture.NewDayWriter(src, "ns", "clickstream", 5*time.Minute, capture.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		at := day.Add(10*time.Hour + time.Duration(i)*20*time.Second)
		body := fmt.Sprintf(`{"specversion":"1.0","id":"c%d","source":"/web","type":"com.contoso.clickstream.product.viewed","time":%q,"data":{"sessionId":"s%d","productId":"p-%d","category":"tools"}}`,
			i, at.Format(time.RFC3339), i%5, i%3)
		if err := w.Write(i%2, capture.Event{EnqueuedTime: at, Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pub := &nopPublisher{}
	job := &jobs.Rollup{Source: src, Container: "capture", Reports: jobs.Dir{Root: filepath.Join(dir, "reports")},
		Stores: jobs.Stores{
			Days:            NewCollection[jobs.DayState](c, db, settings.ContainerJobState),
			Files:           NewCollection[jobs.FileState](c, db, settings.ContainerJobState),
			Recommendations: NewCollection[jobs.Recommendation](c, db, settings.ContainerRecommendations),
		},
		DeadLetters: deadlettertest.Local(t), Publisher: pub, Config: jobs.Config{Concurrency: 4},
		Now: func() time.Time { return day.AddDate(0, 0, 1).Add(time.Hour) }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	res, err := job.RunDay(ctx, day, jobs.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 8 || res.Read != 8 || res.Counts["views"] != 60 {
		t.Fatalf("first run %+v", res)
	}
	again, err := job.RunDay(ctx, day, jobs.RunOptions{Rerun: true})
	if err != nil || again.Read != 0 || again.Files != 8 || pub.n != 2 {
		t.Fatalf("re-run %+v, %v (%d events)", again, err, pub.n)
	}
	r := &jobs.Recommender{Store: job.Stores.Recommendations}
	ans, err := r.Get(ctx, "p-0", 5)
	if err != nil || ans.Source != jobs.SourceViewedTogether || len(ans.Items) != 2 {
		t.Fatalf("recommendations of p-0: %+v, %v", ans, err)
	}
}
