// Package standins gives tests the addresses of the local Azure stand-ins that
// test/standins/standins.sh starts (Azurite, the Cosmos DB server, the Event Hubs fake).
package standins

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// Require returns the value of the stand-in variable name (see `standins.sh env`). When it is unset
// the test is skipped, except under CI (CI=true), where a missing stand-in must not pass as green:
// the test fails.
func Require(t testing.TB, name string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	msg := fmt.Sprintf("%s is not set: run `make test`, or `bash test/standins/standins.sh start` then "+
		"`eval \"$(bash test/standins/standins.sh env)\"`", name)
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
