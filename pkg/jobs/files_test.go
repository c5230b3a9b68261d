package jobs_test

import (
	"context"
	"errors"
	"testing"

	"github.com/contoso/eventpipeline/pkg/jobs"
	"github.com/contoso/eventpipeline/pkg/jobs/jobstest"
)

func TestDirContract(t *testing.T) {
	jobstest.RunObjects(t, func(t *testing.T) jobs.Objects { return jobs.Dir{Root: t.TempDir()} })
}

func TestDirRefusesNamesOutsideIt(t *testing.T) {
	d := jobs.Dir{Root: t.TempDir()}
	for _, name := range []string{"", "../x", "a/../../x", "/etc/passwd", "a//b", "./a"} {
		if err := d.Put(context.Background(), name, []byte("x"), "text/plain"); !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("Put(%q): err = %v, want ErrInvalid", name, err)
		}
	}
}
