package settings_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/contoso/eventpipeline/pkg/settings"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsAreEmbedded(t *testing.T) {
	c, err := settings.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cosmos != nil || c.EventHubs != nil || c.Storage != nil || len(c.Topics) != 0 {
		t.Fatalf("services configured without settings: %+v", c)
	}
	if c.Port != settings.DefaultPort || c.CosmosDatabase != "contoso" || c.RecentlyViewedTTL.Hours() != 30*24 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConnections(t *testing.T) {
	c, err := settings.Load(env(map[string]string{
		"CosmosDBConnection__accountEndpoint":          "https://acct.documents.azure.com:443/",
		"CosmosDBConnection__clientId":                 "cid",
		"EventHubsConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net",
		"StorageConnection":                            "UseDevelopmentStorage=true",
		"ProductEventsTopic__topicEndpointUri":         "https://t.westeurope-1.eventgrid.azure.net",
		"AnalyticsEventsTopic__topicEndpointUri":       "https://a.westeurope-1.eventgrid.azure.net/api/events",
		"AnalyticsEventsTopic__topicKey":               "k",
		"COSMOS_PREFERRED_REGIONS":                     "westeurope, northeurope",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cosmos.Endpoint != "https://acct.documents.azure.com:443/" || c.Cosmos.Key != "" || c.Cosmos.ClientID != "cid" {
		t.Errorf("cosmos = %+v", c.Cosmos)
	}
	if c.EventHubs.Namespace != "ns.servicebus.windows.net" || !strings.Contains(c.Storage.ConnectionString, "devstoreaccount1") {
		t.Errorf("eventhubs %+v storage %+v", c.EventHubs, c.Storage)
	}
	if c.Topics["ProductEventsTopic"].Endpoint != "https://t.westeurope-1.eventgrid.azure.net/api/events" || c.Topics["AnalyticsEventsTopic"].Key != "k" {
		t.Errorf("topics = %+v %+v", c.Topics["ProductEventsTopic"], c.Topics["AnalyticsEventsTopic"])
	}
	if strings.Join(c.CosmosPreferredRegions, "|") != "westeurope|northeurope" {
		t.Errorf("regions = %q", c.CosmosPreferredRegions)
	}
}

func TestMalformedSettingsNameTheSetting(t *testing.T) {
	tests := []struct{ name, value string }{
		{"CosmosDBConnection", "AccountEndpoint=https://a.documents.azure.com/"},
		{"CosmosDBConnection", "just text"},
		{"CosmosDBConnection__accountEndpoint", "http://plain.example"},
		{"EventHubsConnection", "Endpoint=https://x;SharedAccessKeyName=a;SharedAccessKey=b"},
		{"EventHubsConnection", "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b;EntityPath=clickstream"},
		{"EventHubsConnection__fullyQualifiedNamespace", "sb://ns.servicebus.windows.net/"},
		{"StorageConnection", "Foo=bar"},
		{"StorageConnection__blobServiceUri", "not a url"},
		{"ProductEventsTopic__topicEndpointUri", "http://t.example/api/events"},
		{"ProductEventsTopic__topicKey", "key-without-endpoint"},
		{"RECENTLY_VIEWED_TTL_DAYS", "0"},
		{"COSMOS_CREATE_CONTAINERS", "yes please"},
		{"LOG_LEVEL", "verbose"},
		{"FUNCTIONS_CUSTOMHANDLER_PORT", "http"},
		{"LOCAL_PARTNER_WEBHOOKS", "ftp://x"},
		{"PARTNER_PRINCIPALS", "[1,2]"},
	}
	for _, tt := range tests {
		_, err := settings.Load(env(map[string]string{tt.name: tt.value}))
		var se *settings.Error
		if !errors.As(err, &se) || se.Name != tt.name || !strings.HasPrefix(err.Error(), "setting "+tt.name+":") {
			t.Errorf("%s=%q: err = %v, want an error naming %s", tt.name, tt.value, err, tt.name)
		}
		if strings.Contains(err.Error(), "key-without") {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
}

// TestNoDeadSettings: every catalogued setting is read by Load (AZURE_CLIENT_ID is read by
// azidentity), and local.settings.json.example lists every one of them.
func TestNoDeadSettings(t *testing.T) {
	read := map[string]bool{}
	settings.Load(func(k string) string { read[k] = true; return "" })
	b, err := os.ReadFile("../../local.settings.json.example")
	if err != nil {
		t.Fatal(err)
	}
	var local struct {
		Values       map[string]string `json:"Values"`
		Descriptions map[string]string `json:"_descriptions"`
	}
	if err := json.Unmarshal(b, &local); err != nil {
		t.Fatalf("local.settings.json.example: %v", err)
	}
	for _, s := range settings.AppSettings() {
		if s.Name == "AZURE_CLIENT_ID" {
			continue
		}
		if !read[s.Name] {
			t.Errorf("catalogued setting %s is never read by settings.Load", s.Name)
		}
		identity := strings.Contains(s.Name, "__accountEndpoint") || strings.Contains(s.Name, "__fullyQualifiedNamespace") || strings.Contains(s.Name, "__blobServiceUri")
		if _, ok := local.Values[s.Name]; !ok && !identity {
			t.Errorf("local.settings.json.example does not list %s", s.Name)
		}
	}
	for k := range local.Values {
		if _, ok := local.Descriptions[k]; !ok {
			t.Errorf("local.settings.json.example: %s has no description", k)
		}
	}
}
