package deadletter_test

import (
	"testing"

	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/deadletter/deadlettertest"
)

func TestFilesContract(t *testing.T) {
	deadlettertest.Run(t, func(t *testing.T) deadletter.Store { return &deadletter.Files{Dir: t.TempDir()} })
}
