package deadletter_test

import (
	"testing"

	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/deadletter/deadlettertest"
	"github.com/contoso/eventpipeline/pkg/embedded"
)

func TestDocsContract(t *testing.T) {
	deadlettertest.Run(t, func(t *testing.T) deadletter.Store {
		db, err := embedded.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		c, err := embedded.NewCollection[deadletter.Record](db, "deadletter")
		if err != nil {
			t.Fatal(err)
		}
		return &deadletter.Docs{C: c, Functions: []string{"RecentlyViewed", "A", "B", "C", "Fn"}}
	})
}
