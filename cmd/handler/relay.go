package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/contoso/eventpipeline/pkg/settings"
)

// relayCommand re-sends parked events now (what the RelayOutbox timer does every 5 minutes);
// -requeue <destination> first turns that destination's rejected events back into parked ones, after
// the cause was fixed.
func relayCommand(ctx context.Context, args []string, cfg *settings.Config, log *slog.Logger, stderr io.Writer) int {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	requeue := fs.String("requeue", "", "destination whose rejected events to requeue first")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	deps, closeDeps, err := build(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "handler: %v\n", err)
		return 1
	}
	defer closeDeps()
	if *requeue != "" {
		if _, err := deps.RequeueRejected(ctx, *requeue); err != nil {
			fmt.Fprintf(stderr, "handler: requeue: %v\n", err)
			return 1
		}
	}
	if err := deps.RelayOutbox(ctx, log); err != nil {
		fmt.Fprintf(stderr, "handler: relay: %v\n", err)
		return 1
	}
	return 0
}
