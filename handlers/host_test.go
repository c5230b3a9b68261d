package handlers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/contoso/eventpipeline/pkg/hostsim"
)

// invokeAsHost posts body to /<fn> as the Functions host does and checks the reply the host needs
// whatever the outcome: Content-Type application/json and a JSON object (never empty, never null).
func invokeAsHost(t testing.TB, host *hostsim.Client, fn string, body []byte) *hostsim.Result {
	t.Helper()
	res, err := host.Invoke(context.Background(), fn, body)
	if err != nil {
		t.Fatalf("invoke %s: %v", fn, err)
	}
	if !strings.HasPrefix(res.ContentType, "application/json") {
		t.Fatalf("%s: reply Content-Type %q", fn, res.ContentType)
	}
	var obj map[string]any
	if json.Unmarshal(res.Raw, &obj) != nil || obj == nil {
		t.Fatalf("%s: reply is not a JSON object: %s", fn, res.Raw)
	}
	return res
}
