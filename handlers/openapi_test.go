package handlers_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/contoso/eventpipeline/pkg/hostsim"
)

// openAPI loads docs/openapi.yaml as plain maps.
func openAPI(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	return doc
}

func node(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// resolve follows a local $ref ("#/components/responses/X").
func resolve(doc map[string]any, v any) any {
	ref, ok := node(v, "$ref").(string)
	if !ok {
		return v
	}
	return node(doc, strings.Split(strings.TrimPrefix(ref, "#/"), "/")...)
}

// TestOpenAPICoversEveryHTTPFunction: each functions/* folder with an httpTrigger has its route and
// methods in docs/openapi.yaml, under an operationId equal to the function name.
func TestOpenAPICoversEveryHTTPFunction(t *testing.T) {
	doc := openAPI(t)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi %q, want 3.1.x", v)
	}
	dirs, err := filepath.Glob("../functions/*/function.json")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var fj struct {
			Bindings []struct {
				Type    string   `json:"type"`
				Route   string   `json:"route"`
				Methods []string `json:"methods"`
			} `json:"bindings"`
		}
		if err := json.Unmarshal(b, &fj); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		name := filepath.Base(filepath.Dir(f))
		for _, bd := range fj.Bindings {
			if bd.Type != "httpTrigger" {
				continue
			}
			seen++
			path := "/" + bd.Route
			if bd.Route == "" {
				path = "/" + name
			}
			for _, m := range bd.Methods {
				op := node(doc, "paths", path, strings.ToLower(m))
				if op == nil {
					t.Errorf("%s: docs/openapi.yaml has no %s %s", name, strings.ToUpper(m), path)
					continue
				}
				if id, _ := node(op, "operationId").(string); id != name {
					t.Errorf("%s %s: operationId %q, want the function name %q", m, path, id, name)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no HTTP function found under functions/")
	}
}

// TestOpenAPIErrorsAreProblems: every documented 4xx/5xx answer with a body is application/problem+json.
func TestOpenAPIErrorsAreProblems(t *testing.T) {
	doc := openAPI(t)
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			responses, _ := node(op, "responses").(map[string]any)
			for code, r := range responses {
				n, err := strconv.Atoi(code)
				if err != nil || n < 400 {
					continue
				}
				content, _ := node(resolve(doc, r), "content").(map[string]any)
				if content == nil {
					continue // e.g. the host's own 401 for a missing key: no body
				}
				for mt, c := range content {
					if mt != "application/problem+json" {
						t.Errorf("%s %s %s: media type %s, want application/problem+json", method, path, code, mt)
					}
					exs, _ := node(c, "examples").(map[string]any)
					for name, ex := range exs {
						if st, _ := node(ex, "value", "status").(int); st != n {
							t.Errorf("%s %s %s: example %s has status %v", method, path, code, name, node(ex, "value", "status"))
						}
					}
				}
			}
		}
	}
}

// TestOpenAPIFeedbackExamplesAreAccepted sends every request example of PartnerFeedback through the
// handler, as a partner would, and expects 202.
func TestOpenAPIFeedbackExamplesAreAccepted(t *testing.T) {
	doc := openAPI(t)
	content, _ := node(doc, "paths", "/feedback", "post", "requestBody", "content").(map[string]any)
	if len(content) != 3 {
		t.Fatalf("PartnerFeedback documents %d media types, want 3", len(content))
	}
	e := newFeedbackEnv(t, 0)
	var names []string
	for mt, c := range content {
		exs, _ := node(c, "examples").(map[string]any)
		if len(exs) == 0 {
			t.Errorf("%s: no examples", mt)
		}
		for name, ex := range exs {
			body, err := json.Marshal(node(ex, "value"))
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, mt+" "+name)
			rp := e.post(req{contentType: mt, ids: hostsim.FunctionKey("partner-acme"), body: string(body)})
			if rp.status != 202 {
				t.Errorf("example %s %s: %d %s", mt, name, rp.status, rp.body)
			}
		}
	}
	sort.Strings(names)
	t.Logf("accepted examples: %v", names)
}

// TestOpenAPIExamplesMatchSchemas validates every example of a request or response body against the
// schema of its media type (JSON Schema 2020-12, as OpenAPI 3.1 says).
func TestOpenAPIExamplesMatchSchemas(t *testing.T) {
	const base = "https://contoso.example/openapi.json"
	doc := openAPI(t)
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(base, inst); err != nil {
		t.Fatal(err)
	}
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }
	checked := 0
	check := func(where, pointer string, content map[string]any) {
		for mt, c2 := range content {
			if node(c2, "schema") == nil {
				continue
			}
			sch, err := c.Compile(base + "#" + pointer + "/content/" + esc(mt) + "/schema")
			if err != nil {
				t.Errorf("%s %s: schema: %v", where, mt, err)
				continue
			}
			exs, _ := node(c2, "examples").(map[string]any)
			for name, ex := range exs {
				b, _ := json.Marshal(node(ex, "value"))
				v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
				if err := sch.Validate(v); err != nil {
					t.Errorf("%s %s example %s: %v", where, mt, name, err)
				}
				checked++
			}
		}
	}
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			p := "/paths/" + esc(path) + "/" + method
			if content, ok := node(op, "requestBody", "content").(map[string]any); ok {
				check(method+" "+path+" request", p+"/requestBody", content)
			}
			responses, _ := node(op, "responses").(map[string]any)
			for code, r := range responses {
				rp := p + "/responses/" + code
				if ref, ok := node(r, "$ref").(string); ok {
					rp = strings.TrimPrefix(ref, "#")
				}
				if content, ok := node(resolve(doc, r), "content").(map[string]any); ok {
					check(method+" "+path+" "+code, rp, content)
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d examples checked", checked)
	}
}
