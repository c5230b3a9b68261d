// Package infra_test cross-checks the Bicep templates against the repository's own contracts: the
// settings the handler reads (pkg/settings), the function.json bindings (functions/*), and the
// Cosmos containers, hubs, consumer groups and topics they name. It needs no Azure access and no
// Bicep compiler; bicep_test.go holds the small Bicep reader it uses.
package infra_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/contoso/eventpipeline/pkg/settings"
)

// The declarations in infra/ that these tests read. Renaming one of them needs this list updated.
const (
	varCosmosContainers    = "cosmosContainers"
	varEventHubs           = "eventHubs"
	varConsumerGroups      = "eventHubConsumerGroups"
	varDataBlobContainers  = "dataBlobContainers"
	varEventGridTopics     = "eventGridTopics"
	varBackgroundFunctions = "backgroundFunctions"
	varPremiumOnlySettings = "premiumOnlyAppSettings"
	paramCosmosDatabase    = "cosmosDatabaseName"
)

// Settings the Functions host reads (not the handler): identity-based host storage and
// Entra-authenticated Application Insights.
var hostSettings = []string{
	"AzureWebJobsStorage__accountName",
	"AzureWebJobsStorage__credential",
	"AzureWebJobsStorage__clientId",
	"APPLICATIONINSIGHTS_CONNECTION_STRING",
	"APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}

// Settings that belong to non-Flex plans only: on Flex the runtime is functionAppConfig.runtime and
// the platform manages the host version.
var premiumOnlySettings = map[string]string{
	"FUNCTIONS_WORKER_RUNTIME":    "custom",
	"FUNCTIONS_EXTENSION_VERSION": "~4",
}

// The identity setting each connection prefix of pkg/settings needs besides __credential/__clientId.
var prefixEndpointSetting = map[string]string{
	settings.CosmosConnection:    "__accountEndpoint",
	settings.EventHubsConnection: "__fullyQualifiedNamespace",
	settings.StorageConnection:   "__blobServiceUri",
	settings.AnalyticsTopic:      "__topicEndpointUri",
	settings.ProductTopic:        "__topicEndpointUri",
}

// For a binding type (lower case), the identity settings its connection needs; "a|b" = either.
var bindingEndpointSettings = map[string][]string{
	"eventhubtrigger":       {"__fullyQualifiedNamespace"},
	"eventhub":              {"__fullyQualifiedNamespace"},
	"cosmosdbtrigger":       {"__accountEndpoint"},
	"cosmosdb":              {"__accountEndpoint"},
	"eventgrid":             {"__topicEndpointUri"},
	"blob":                  {"__blobServiceUri|__serviceUri"},
	"blobtrigger":           {"__blobServiceUri|__serviceUri", "__queueServiceUri"},
	"queue":                 {"__queueServiceUri|__serviceUri"},
	"queuetrigger":          {"__queueServiceUri|__serviceUri"},
	"table":                 {"__tableServiceUri|__serviceUri"},
	"servicebus":            {"__fullyQualifiedNamespace"},
	"servicebustrigger":     {"__fullyQualifiedNamespace"},
	"azurewebjobsstorage":   {"__accountName|__blobServiceUri"},
	"kafka":                 {},
	"kafkatrigger":          {},
	"signalr":               {},
	"signalrconnectioninfo": {},
}

// appSettings collects the literal app settings of infra/: the keys of every object-literal var
// whose name contains "AppSettings", with the var (and file) that sets each.
type appSettings struct {
	values map[string]*bval
	where  map[string][]string
}

func loadAppSettings(t *testing.T) appSettings {
	t.Helper()
	s := appSettings{values: map[string]*bval{}, where: map[string][]string{}}
	files := loadInfra(t)
	for _, path := range sortedKeys(files) {
		f := files[path]
		for name, v := range f.vars {
			if !strings.Contains(strings.ToLower(name), "appsettings") || v.Kind != 'o' {
				continue
			}
			for _, k := range v.Keys {
				s.values[k] = v.Props[k]
				s.where[k] = append(s.where[k], path+":"+name)
			}
		}
	}
	if len(s.values) == 0 {
		t.Fatal("no app settings found: expected object-literal vars named *AppSettings in infra/**/*.bicep")
	}
	return s
}

func (s appSettings) has(name string) bool { _, ok := s.values[name]; return ok }

// literal returns the value of a setting when it is a string literal in the Bicep.
func (s appSettings) literal(name string) (string, bool) {
	v, ok := s.values[name]
	if !ok || v.Kind != 's' {
		return "", false
	}
	return v.Str, true
}

// mainVar returns a top-level var of infra/main.bicep, failing the test when it is missing.
func mainVar(t *testing.T, name string, kind byte) *bval {
	t.Helper()
	v := loadInfra(t)["main.bicep"].vars[name]
	if v == nil {
		t.Fatalf("infra/main.bicep: var %s not found (the contract tests read it)", name)
	}
	if v.Kind != kind {
		t.Fatalf("infra/main.bicep: var %s must be a literal %s, got %q", name, kindName(kind), v.Raw)
	}
	return v
}

func kindName(k byte) string {
	return map[byte]string{'o': "object", 'a': "array", 's': "string", 'x': "expression"}[k]
}

// resolveString returns the string a value denotes: a literal, or the name of a main.bicep var or
// param default that is one.
func resolveString(t *testing.T, v *bval) (string, bool) {
	t.Helper()
	if v == nil {
		return "", false
	}
	if v.Kind == 's' {
		return v.Str, true
	}
	if v.Kind == 'x' && identRe.MatchString(v.Raw) && identRe.FindString(v.Raw) == v.Raw {
		main := loadInfra(t)["main.bicep"]
		if ref := main.vars[v.Raw]; ref != nil && ref.Kind == 's' {
			return ref.Str, true
		}
		if def, ok := paramDefault(main, v.Raw); ok {
			return def, true
		}
	}
	return "", false
}

// paramDefault returns the literal string default of a param of f.
func paramDefault(f *bicepFile, name string) (string, bool) {
	re := regexp.MustCompile(`(?m)^param\s+` + regexp.QuoteMeta(name) + `\s+\w+\s*=\s*'([^'\\]*)'\s*$`)
	m := re.FindStringSubmatch(f.clean)
	if m == nil {
		return "", false
	}
	return m[1], true
}

func stringItems(t *testing.T, v *bval) []string {
	t.Helper()
	var out []string
	for _, it := range v.Items {
		s, ok := resolveString(t, it)
		if !ok {
			t.Errorf("infra/main.bicep:%d: %q is not a string literal", it.Line, it.Raw)
			continue
		}
		out = append(out, s)
	}
	return out
}

// ---------------------------------------------------------------------------------------------
// (2) Every setting the handler reads is set in Azure; local-only ones are not.
// ---------------------------------------------------------------------------------------------

func TestAppSettingsCoverSettingsCatalog(t *testing.T) {
	s := loadAppSettings(t)
	for _, a := range settings.AppSettings() {
		switch {
		case a.LocalOnly && s.has(a.Name):
			t.Errorf("app setting %s is local-only (pkg/settings: %s) but infra sets it in %v", a.Name, a.Description, s.where[a.Name])
		case !a.LocalOnly && !s.has(a.Name):
			t.Errorf("app setting %s (pkg/settings: %s) is not set by any *AppSettings var in infra/**/*.bicep", a.Name, a.Description)
		}
	}
	for _, name := range hostSettings {
		if !s.has(name) {
			t.Errorf("host setting %s is not set by any *AppSettings var in infra/**/*.bicep", name)
		}
	}
	// A literal default in the catalog should match the literal in the Bicep, when both are literal.
	for _, a := range settings.AppSettings() {
		if a.LocalOnly || a.Default == "" {
			continue
		}
		if v, ok := s.literal(a.Name); ok && v != a.Default {
			t.Logf("app setting %s: infra sets %q, the code's default is %q", a.Name, v, a.Default)
		}
	}
}

func TestPlanSpecificSettings(t *testing.T) {
	s := loadAppSettings(t)
	for name, want := range premiumOnlySettings {
		where := s.where[name]
		if len(where) == 0 {
			t.Errorf("%s is not set for the Premium plan: expected it in var %s", name, varPremiumOnlySettings)
			continue
		}
		for _, w := range where {
			if !strings.HasSuffix(w, ":"+varPremiumOnlySettings) {
				t.Errorf("%s must be set only for non-Flex plans (var %s), but %s sets it too", name, varPremiumOnlySettings, w)
			}
		}
		if got, ok := s.literal(name); !ok || got != want {
			t.Errorf("%s = %v, want '%s'", name, s.values[name], want)
		}
	}
	// Flex declares the runtime in functionAppConfig.runtime instead.
	var found bool
	for path, f := range loadInfra(t) {
		if def, ok := paramDefault(f, "flexRuntimeName"); ok {
			found = true
			if def != "custom" {
				t.Errorf("infra/%s: flexRuntimeName defaults to %q, want 'custom'", path, def)
			}
		}
	}
	if !found {
		t.Error("no flexRuntimeName param with a literal default found: functionAppConfig.runtime.name must be 'custom'")
	}
}

// ---------------------------------------------------------------------------------------------
// (1) Every connection, from pkg/settings and from function.json, is identity-based in Azure.
// ---------------------------------------------------------------------------------------------

func checkIdentityConnection(t *testing.T, s appSettings, prefix string, endpoints []string, who string) {
	t.Helper()
	for _, alt := range endpoints {
		var ok bool
		for _, suffix := range strings.Split(alt, "|") {
			if s.has(prefix + suffix) {
				ok = true
			}
		}
		if !ok {
			names := strings.Split(alt, "|")
			for i := range names {
				names[i] = prefix + names[i]
			}
			t.Errorf("connection %s (%s): app setting %s is not set in infra/**/*.bicep", prefix, who, strings.Join(names, " or "))
		}
	}
	if len(endpoints) == 0 && !hasPrefixSetting(s, prefix+"__") {
		t.Errorf("connection %s (%s): no %s__* identity settings in infra/**/*.bicep", prefix, who, prefix)
	}
	if v, ok := s.literal(prefix + "__credential"); !ok || v != "managedidentity" {
		t.Errorf("connection %s (%s): app setting %s__credential must be 'managedidentity' (user-assigned identity), got %v", prefix, who, prefix, s.values[prefix+"__credential"])
	}
	if !s.has(prefix + "__clientId") {
		t.Errorf("connection %s (%s): app setting %s__clientId (client id of the user-assigned identity) is not set", prefix, who, prefix)
	}
	if s.has(prefix) {
		t.Errorf("connection %s (%s): infra sets the plain %s setting; a connection string would take precedence over the identity settings", prefix, who, prefix)
	}
}

func hasPrefixSetting(s appSettings, prefix string) bool {
	for k := range s.values {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

func TestSettingsConnectionsAreIdentityBased(t *testing.T) {
	s := loadAppSettings(t)
	for _, prefix := range sortedKeys(prefixEndpointSetting) {
		checkIdentityConnection(t, s, prefix, []string{prefixEndpointSetting[prefix]}, "pkg/settings")
	}
	checkIdentityConnection(t, s, "AzureWebJobsStorage", bindingEndpointSettings["azurewebjobsstorage"], "host storage")
}

// function.json as far as these tests need it.
type functionJSON struct {
	Bindings []map[string]any `json:"bindings"`
}

type function struct {
	name     string
	bindings []map[string]any
}

// loadFunctions reads functions/*/function.json. The folder may hold few or no functions yet.
func loadFunctions(t *testing.T) []function {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "functions", "*", "function.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	var fns []function
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var fj functionJSON
		if err := json.Unmarshal(b, &fj); err != nil {
			t.Errorf("%s: %v", filepath.ToSlash(p), err)
			continue
		}
		fns = append(fns, function{name: filepath.Base(filepath.Dir(p)), bindings: fj.Bindings})
	}
	if len(fns) == 0 {
		t.Log("no functions/*/function.json yet: only the pkg/settings contracts are checked")
	}
	return fns
}

func str(b map[string]any, key string) string {
	v, _ := b[key].(string)
	return v
}

func bindingType(b map[string]any) string { return strings.ToLower(str(b, "type")) }

// settingRef returns NAME for a binding value written as %NAME%.
func settingRef(v string) (string, bool) {
	if len(v) > 2 && strings.HasPrefix(v, "%") && strings.HasSuffix(v, "%") {
		return v[1 : len(v)-1], true
	}
	return "", false
}

func TestFunctionConnectionsAreIdentityBased(t *testing.T) {
	s := loadAppSettings(t)
	for _, fn := range loadFunctions(t) {
		for _, b := range fn.bindings {
			for _, key := range []string{"connection", "leaseConnection"} {
				conn := str(b, key)
				if conn == "" {
					continue
				}
				who := fmt.Sprintf("functions/%s binding %q %s", fn.name, str(b, "name"), key)
				typ := bindingType(b)
				if conn == "AzureWebJobsStorage" {
					typ = "azurewebjobsstorage"
				}
				endpoints, known := bindingEndpointSettings[typ]
				if !known {
					t.Logf("%s: binding type %q is not known to this test; checking only %s__credential/__clientId", who, str(b, "type"), conn)
				}
				checkIdentityConnection(t, s, conn, endpoints, who)
			}
		}
	}
}

// Every %SETTING% a binding references must be set too.
func TestFunctionSettingReferencesAreSet(t *testing.T) {
	s := loadAppSettings(t)
	for _, fn := range loadFunctions(t) {
		for _, b := range fn.bindings {
			for key, raw := range b {
				v, ok := raw.(string)
				if !ok {
					continue
				}
				for _, m := range regexp.MustCompile(`%([A-Za-z_][A-Za-z0-9_]*)%`).FindAllStringSubmatch(v, -1) {
					if !s.has(m[1]) && !isLocalOnly(m[1]) {
						t.Errorf("functions/%s binding %q: %s references %%%s%%, which infra/**/*.bicep does not set", fn.name, str(b, "name"), key, m[1])
					}
				}
			}
		}
	}
}

func isLocalOnly(name string) bool {
	for _, a := range settings.AppSettings() {
		if a.Name == name {
			return a.LocalOnly
		}
	}
	return false
}

// ---------------------------------------------------------------------------------------------
// No secrets: identity everywhere.
// ---------------------------------------------------------------------------------------------

func TestNoSecretsInInfra(t *testing.T) {
	forbidden := regexp.MustCompile(`(?i)listKeys\(|listConnectionStrings\(|AccountKey=|SharedAccessKey|\.primaryKey\b|primaryMasterKey|WEBSITE_CONTENTAZUREFILECONNECTIONSTRING`)
	for path, f := range loadInfra(t) {
		for _, m := range forbidden.FindAllStringIndex(f.clean, -1) {
			t.Errorf("infra/%s:%d: %q: no keys or connection strings, use managed identity", path, lineOf(f.clean, m[0]), f.clean[m[0]:m[1]])
		}
	}
	s := loadAppSettings(t)
	secretish := regexp.MustCompile(`(?i)(__topicKey|Key|ConnectionString|Password|Secret)$`)
	for name := range s.values {
		if secretish.MatchString(name) && !strings.HasPrefix(name, "APPLICATIONINSIGHTS_") {
			t.Errorf("app setting %s looks like a secret; use managed identity (or a Key Vault reference)", name)
		}
	}
	if s.has("AzureWebJobsStorage") {
		t.Error("app setting AzureWebJobsStorage (connection string) is set; host storage must use AzureWebJobsStorage__accountName with the identity")
	}
	for _, want := range []string{"disableLocalAuth: true", "allowSharedKeyAccess: false"} {
		var found bool
		for _, f := range loadInfra(t) {
			if strings.Contains(f.clean, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %q in infra/**/*.bicep", want)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// (3) Cosmos DB containers: same names, partition keys and default TTLs as pkg/settings.
// ---------------------------------------------------------------------------------------------

type bicepContainer struct {
	partitionKey string
	defaultTTL   string
	line         int
}

func cosmosContainers(t *testing.T) map[string]bicepContainer {
	t.Helper()
	v := mainVar(t, varCosmosContainers, 'a')
	out := map[string]bicepContainer{}
	for _, it := range v.Items {
		if it.Kind != 'o' {
			t.Errorf("infra/main.bicep:%d: %s entries must be object literals", it.Line, varCosmosContainers)
			continue
		}
		name, ok1 := resolveString(t, it.Props["name"])
		pk, ok2 := resolveString(t, it.Props["partitionKey"])
		if !ok1 || !ok2 {
			t.Errorf("infra/main.bicep:%d: %s entry needs literal name and partitionKey", it.Line, varCosmosContainers)
			continue
		}
		c := bicepContainer{partitionKey: pk, line: it.Line}
		if ttl := it.Props["defaultTtl"]; ttl != nil {
			c.defaultTTL = strings.TrimSpace(ttl.Raw)
		}
		if _, dup := out[name]; dup {
			t.Errorf("infra/main.bicep:%d: container %s declared twice", it.Line, name)
		}
		out[name] = c
	}
	return out
}

func TestCosmosContainersMatchSettings(t *testing.T) {
	declared := cosmosContainers(t)
	want := map[string]bool{}
	for _, c := range settings.Containers() {
		want[c.Name] = true
		got, ok := declared[c.Name]
		if !ok {
			t.Errorf("Cosmos container %s (partition key %s, pkg/settings) is not declared in %s in infra/main.bicep", c.Name, c.PartitionKey, varCosmosContainers)
			continue
		}
		if got.partitionKey != c.PartitionKey {
			t.Errorf("Cosmos container %s: partition key %s in infra/main.bicep:%d, %s in pkg/settings", c.Name, got.partitionKey, got.line, c.PartitionKey)
		}
		if got.defaultTTL != strconv.Itoa(c.DefaultTTLSeconds) {
			t.Errorf("Cosmos container %s: defaultTtl %s in infra/main.bicep:%d, %d in pkg/settings", c.Name, got.defaultTTL, got.line, c.DefaultTTLSeconds)
		}
	}
	for name, c := range declared {
		if !want[name] {
			t.Errorf("Cosmos container %s is declared in infra/main.bicep:%d but not in pkg/settings.Containers()", name, c.line)
		}
	}
	if declared[settings.ContainerLeases.Name].partitionKey != "/id" {
		t.Errorf("the lease container %s must be partitioned by /id (the Cosmos DB trigger requires it)", settings.ContainerLeases.Name)
	}
	main := loadInfra(t)["main.bicep"]
	if def, ok := paramDefault(main, paramCosmosDatabase); !ok || def != "contoso" {
		t.Errorf("infra/main.bicep: param %s should default to 'contoso' (COSMOS_DATABASE default), got %q", paramCosmosDatabase, def)
	}
}

// ---------------------------------------------------------------------------------------------
// (4) Event Hubs, consumer groups, Blob containers; and what function.json names.
// ---------------------------------------------------------------------------------------------

type hubModel struct {
	hubs           map[string]*bval    // name -> entry
	consumerGroups map[string][]string // hub -> groups
	blobContainers map[string]bool
}

func loadHubs(t *testing.T) hubModel {
	t.Helper()
	m := hubModel{hubs: map[string]*bval{}, consumerGroups: map[string][]string{}, blobContainers: map[string]bool{}}
	for _, it := range mainVar(t, varEventHubs, 'a').Items {
		name, ok := resolveString(t, it.Props["name"])
		if it.Kind != 'o' || !ok {
			t.Errorf("infra/main.bicep:%d: %s entries must be objects with a literal name", it.Line, varEventHubs)
			continue
		}
		m.hubs[name] = it
	}
	for _, it := range mainVar(t, varConsumerGroups, 'a').Items {
		hub, ok1 := resolveString(t, it.Props["hub"])
		name, ok2 := resolveString(t, it.Props["name"])
		if it.Kind != 'o' || !ok1 || !ok2 {
			t.Errorf("infra/main.bicep:%d: %s entries must be objects with literal hub and name", it.Line, varConsumerGroups)
			continue
		}
		if m.hubs[hub] == nil {
			t.Errorf("infra/main.bicep:%d: consumer group %s is on hub %s, which %s does not declare", it.Line, name, hub, varEventHubs)
		}
		m.consumerGroups[hub] = append(m.consumerGroups[hub], name)
	}
	for _, c := range stringItems(t, mainVar(t, varDataBlobContainers, 'a')) {
		m.blobContainers[c] = true
	}
	return m
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestEventHubsMatchSettings(t *testing.T) {
	m := loadHubs(t)
	for _, hub := range []string{settings.HubClickstream, settings.HubFeedback} {
		if m.hubs[hub] == nil {
			t.Errorf("event hub %s (pkg/settings) is not declared in %s in infra/main.bicep", hub, varEventHubs)
		}
	}
	for _, cg := range []string{settings.ConsumerGroupRecent, settings.ConsumerGroupTrends} {
		if !contains(m.consumerGroups[settings.HubClickstream], cg) {
			t.Errorf("consumer group %s on hub %s (pkg/settings) is not declared in %s in infra/main.bicep", cg, settings.HubClickstream, varConsumerGroups)
		}
	}
	if h := m.hubs[settings.HubClickstream]; h != nil {
		if c := h.Props["capture"]; c == nil || strings.TrimSpace(c.Raw) != "true" {
			t.Errorf("infra/main.bicep:%d: hub %s must be captured (capture: true)", h.Line, settings.HubClickstream)
		}
	}
	for _, c := range []string{settings.BlobDeadLetter, settings.BlobReports, settings.BlobCapture} {
		if !m.blobContainers[c] {
			t.Errorf("blob container %s (pkg/settings) is not in %s in infra/main.bicep", c, varDataBlobContainers)
		}
	}
	s := loadAppSettings(t)
	if v, ok := resolveString(t, s.values["CAPTURE_CONTAINER"]); !ok || v != settings.BlobCapture {
		t.Errorf("CAPTURE_CONTAINER is %v in infra, want %q (the container Capture writes to)", s.values["CAPTURE_CONTAINER"], settings.BlobCapture)
	}
	var eh string
	for path, f := range loadInfra(t) {
		if strings.Contains(f.clean, "Microsoft.EventHub/namespaces/eventhubs@") {
			eh = path
			for _, want := range []string{"encoding: 'Avro'", "skipEmptyArchives: true", "kafkaEnabled: true",
				"'{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}'"} {
				if !strings.Contains(f.clean, want) {
					t.Errorf("infra/%s: expected %s (Capture as Avro, empty archives skipped, default name format; Kafka on)", path, want)
				}
			}
		}
	}
	if eh == "" {
		t.Error("no Microsoft.EventHub/namespaces/eventhubs resource in infra/**/*.bicep")
	}
}

// resolveBindingName returns the literal name a binding value denotes (through %SETTING% when the
// setting is a literal in the Bicep); ok is false when it cannot be known statically.
func resolveBindingName(t *testing.T, s appSettings, v string) (string, bool) {
	if ref, isRef := settingRef(v); isRef {
		return resolveString(t, s.values[ref])
	}
	return v, v != ""
}

func TestFunctionBindingsProvisioned(t *testing.T) {
	s := loadAppSettings(t)
	hubs := loadHubs(t)
	containers := cosmosContainers(t)
	main := loadInfra(t)["main.bicep"]
	database, _ := paramDefault(main, paramCosmosDatabase)
	for _, fn := range loadFunctions(t) {
		for _, b := range fn.bindings {
			where := fmt.Sprintf("functions/%s binding %q", fn.name, str(b, "name"))
			typ := bindingType(b)
			if hub, ok := resolveBindingName(t, s, str(b, "eventHubName")); ok {
				if hubs.hubs[hub] == nil {
					t.Errorf("%s: event hub %s is not declared in %s in infra/main.bicep", where, hub, varEventHubs)
				}
				if cg, ok := resolveBindingName(t, s, str(b, "consumerGroup")); ok && cg != "$Default" {
					if !contains(hubs.consumerGroups[hub], cg) {
						t.Errorf("%s: consumer group %s on hub %s is not declared in %s in infra/main.bicep", where, cg, hub, varConsumerGroups)
					}
				}
			}
			if strings.HasPrefix(typ, "cosmosdb") {
				for _, key := range []string{"containerName", "leaseContainerName", "collectionName", "leaseCollectionName"} {
					if name, ok := resolveBindingName(t, s, str(b, key)); ok {
						if _, declared := containers[name]; !declared {
							t.Errorf("%s: %s %s is not declared in %s in infra/main.bicep", where, key, name, varCosmosContainers)
						}
					}
				}
				for _, key := range []string{"databaseName", "leaseDatabaseName"} {
					if name, ok := resolveBindingName(t, s, str(b, key)); ok && name != database {
						t.Errorf("%s: %s %s is not the database infra creates (%s); use %%COSMOS_DATABASE%%", where, key, name, database)
					}
				}
				if create, _ := b["createLeaseContainerIfNotExists"].(bool); create {
					t.Errorf("%s: createLeaseContainerIfNotExists is true; with a managed identity the trigger cannot create containers (infra creates %s)", where, settings.ContainerLeases.Name)
				}
			}
			if typ == "blob" || typ == "blobtrigger" {
				if path := str(b, "path"); path != "" {
					container := strings.SplitN(path, "/", 2)[0]
					if name, ok := resolveBindingName(t, s, container); ok && !hubs.blobContainers[name] {
						t.Errorf("%s: blob container %s is not in %s in infra/main.bicep", where, name, varDataBlobContainers)
					}
				}
			}
		}
	}
}

// ---------------------------------------------------------------------------------------------
// (5) Event Grid topics, and the functions the DR standby keeps disabled.
// ---------------------------------------------------------------------------------------------

func TestEventGridTopicsMatchSettings(t *testing.T) {
	topics := mainVar(t, varEventGridTopics, 'o')
	for _, name := range []string{settings.ProductTopic, settings.AnalyticsTopic} {
		if topics.Props[name] == nil {
			t.Errorf("Event Grid topic %s (pkg/settings) is not declared in %s in infra/main.bicep", name, varEventGridTopics)
		}
	}
	var found bool
	declared := regexp.MustCompile(`'Microsoft\.EventGrid/topics@[^']+'\s*=`)
	for path, f := range loadInfra(t) {
		if !declared.MatchString(f.clean) {
			continue
		}
		found = true
		for _, want := range []string{"inputSchema: 'CloudEventSchemaV1_0'", "eventDeliverySchema: 'CloudEventSchemaV1_0'", "deadLetterWithResourceIdentity", "azureActiveDirectoryApplicationIdOrUri"} {
			if !strings.Contains(f.clean, want) {
				t.Errorf("infra/%s: expected %s (CloudEvents in and out, dead-letter with identity, Entra delivery auth)", path, want)
			}
		}
	}
	if !found {
		t.Error("no Microsoft.EventGrid/topics resource in infra/**/*.bicep")
	}
}

func TestCaptureFileCreatedSubscription(t *testing.T) {
	const fn = "CaptureFileCreated"
	var found bool
	for _, f := range loadInfra(t) {
		if strings.Contains(f.clean, "Microsoft.EventHub.CaptureFileCreated") && strings.Contains(f.clean, "'AzureFunction'") {
			found = true
		}
	}
	if !found {
		t.Errorf("no AzureFunction event subscription for Microsoft.EventHub.CaptureFileCreated in infra/**/*.bicep")
	}
	for _, f := range loadFunctions(t) {
		if f.name != fn {
			continue
		}
		var ok bool
		for _, b := range f.bindings {
			if bindingType(b) == "eventgridtrigger" {
				ok = true
			}
		}
		if !ok {
			t.Errorf("functions/%s must have an eventGridTrigger binding: infra delivers Microsoft.EventHub.CaptureFileCreated to it", fn)
		}
	}
}

// The passive app in the secondary region keeps every non-HTTP function disabled, so that
// triggers, timers and change-feed processors run in one region only.
func TestBackgroundFunctionsDisabledInStandby(t *testing.T) {
	listed := map[string]bool{}
	for _, n := range stringItems(t, mainVar(t, varBackgroundFunctions, 'a')) {
		listed[n] = true
	}
	for _, fn := range loadFunctions(t) {
		var trigger string
		for _, b := range fn.bindings {
			if typ := bindingType(b); strings.HasSuffix(typ, "trigger") {
				trigger = typ
			}
		}
		if trigger != "" && trigger != "httptrigger" && !listed[fn.name] {
			t.Errorf("functions/%s has a %s: add it to %s in infra/main.bicep so the DR standby app keeps it disabled", fn.name, trigger, varBackgroundFunctions)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
