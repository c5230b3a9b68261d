package deadlettertest

import (
	"testing"

	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/embedded"
)

// Local returns an empty embedded dead-letter store (the local default) in a temporary directory,
// closed when the test ends. functions are the partitions List("") visits.
func Local(t testing.TB, functions ...string) *deadletter.Docs {
	t.Helper()
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d, err := deadletter.Open(db, functions)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
