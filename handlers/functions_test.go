package handlers_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/contoso/eventpipeline/handlers"
)

type functionJSON struct {
	Bindings []map[string]any `json:"bindings"`
	Retry    *struct {
		Strategy      string `json:"strategy"`
		MaxRetryCount *int   `json:"maxRetryCount"`
	} `json:"retry"`
}

// TestFunctionsMatchRoutes keeps functions/* and the router 1:1, and checks each function.json.
func TestFunctionsMatchRoutes(t *testing.T) {
	dirs, err := os.ReadDir("../functions")
	if err != nil {
		t.Fatal(err)
	}
	var folders []string
	e := newEnv(t)
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		folders = append(folders, d.Name())
		b, err := os.ReadFile(filepath.Join("../functions", d.Name(), "function.json"))
		if err != nil {
			t.Fatalf("%s: %v", d.Name(), err)
		}
		var fj functionJSON
		if err := json.Unmarshal(b, &fj); err != nil {
			t.Fatalf("%s/function.json: %v", d.Name(), err)
		}
		if len(fj.Bindings) == 0 {
			t.Fatalf("%s: no bindings", d.Name())
		}
		trigger, _ := fj.Bindings[0]["type"].(string)
		switch trigger {
		case "eventHubTrigger", "cosmosDBTrigger", "timerTrigger":
			if fj.Retry == nil || fj.Retry.MaxRetryCount == nil || *fj.Retry.MaxRetryCount < 0 {
				t.Errorf("%s: %s needs a retry policy with a finite maxRetryCount", d.Name(), trigger)
			}
		}
		if trigger == "eventHubTrigger" {
			if fj.Bindings[0]["cardinality"] != "many" || fj.Bindings[0]["dataType"] != "string" {
				t.Errorf("%s: eventHubTrigger must be cardinality many, dataType string", d.Name())
			}
		}
		// The router must serve POST /<FunctionName> (anything but 404 means it is routed).
		res := e.invoke(d.Name(), []byte(`{"Data":{},"Metadata":{}}`))
		if res.Status == 404 {
			t.Errorf("function folder %s has no route", d.Name())
		}
	}
	want := handlers.Functions()
	slices.Sort(want)
	if !slices.Equal(folders, want) {
		t.Fatalf("functions/ folders %v != handlers.Functions() %v", folders, want)
	}
}
