package handlers

import (
	"context"
	"errors"

	"github.com/contoso/eventpipeline/pkg/capture"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/jobs"
	"github.com/contoso/eventpipeline/pkg/protocol"
)

// captureFileCreated (eventGridTrigger, Microsoft.EventHub.CaptureFileCreated in the CloudEvents or
// the Event Grid schema) reads the announced Capture file into its partial aggregate as soon as it is
// written, so the daily run only merges. Files of other hubs and other event types are skipped.
//
// Outcomes: a transient failure (storage, the job state) fails the invocation and Event Grid retries
// the delivery (its retry policy, then its own dead-letter container). A notification that is not a
// valid CaptureFileCreated, a corrupt file and a file that is gone are dead-lettered (with the file
// name and reason) and the invocation succeeds. Redeliveries of a processed file do nothing.
func (a *app) captureFileCreated(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
	if a.Rollup == nil {
		return nil, errors.New("rollup: the Capture rollup is not configured")
	}
	var n capture.Notification
	err := protocol.DecodeObject(inv.Request, "event", &n)
	var fc capture.FileCreated
	if err == nil {
		fc, err = n.FileCreated(a.Rollup.Container)
	}
	switch {
	case errors.Is(err, capture.ErrOtherEvent):
		inv.Log.Info("not a CaptureFileCreated event; skipped", "detail", err.Error())
		return nil, nil
	case err != nil:
		return nil, a.deadLetterNotification(ctx, inv, err)
	case fc.Path.EventHub != a.Rollup.Hub():
		inv.Log.Info("Capture file of another event hub; skipped", "file", fc.Name)
		return nil, nil
	}
	st, _, err := a.Rollup.ProcessFile(ctx, capture.File{Name: fc.Name, Size: fc.SizeInBytes, Path: fc.Path},
		jobs.FileOptions{Announced: fc.EventCount, By: FnCaptureFileCreated, InvocationID: inv.ID, CheckDay: true})
	if errors.Is(err, jobs.ErrNotFound) {
		inv.Log.Warn("announced Capture file not found; dead-lettered", "file", fc.Name)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	inv.Log.Info("Capture file", "file", st.Name, "status", st.Status, "by", st.By, "events", st.Counts.Events,
		"clicks", st.Counts.Clicks, "poison", st.Counts.Poison, "announced", fc.EventCount, "reason", st.Reason)
	return nil, nil
}

// deadLetterNotification keeps a notification that cannot be used, with the reason.
func (a *app) deadLetterNotification(ctx context.Context, inv *protocol.Invocation, cause error) error {
	raw := inv.Request.Data["event"]
	rec := deadletter.Record{ID: deadletter.RecordID(FnCaptureFileCreated, "", -1, raw), Function: FnCaptureFileCreated,
		Kind: deadletter.KindPoison, Reason: cause.Error(), Source: "eventgrid/" + capture.TypeFileCreated, SequenceNumber: -1,
		InvocationID: inv.ID, DeadLettered: a.Now().UTC()}
	rec.SetBody(raw)
	if err := a.DeadLetters.Put(ctx, rec); err != nil {
		return errors.Join(cause, err)
	}
	inv.Log.Warn("invalid CaptureFileCreated notification dead-lettered", "reason", cause.Error())
	return nil
}
