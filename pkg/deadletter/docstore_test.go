package deadletter_test

import (
	"testing"

	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/deadletter/deadlettertest"
)

func TestDocsContract(t *testing.T) {
	deadlettertest.Run(t, func(t *testing.T) deadletter.Store {
		return deadlettertest.Local(t, "RecentlyViewed", "A", "B", "C", "Fn")
	})
}
