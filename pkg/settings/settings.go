// Package settings reads the handler's configuration once at start-up, validates it, and decides for
// each Azure service whether the Azure adapter or the embedded local default is used. Connection
// settings use the names the bindings use (CosmosDBConnection, EventHubsConnection, ...), so the
// triggers and the Go adapters share one configuration. A malformed value stops start-up with an
// error naming the setting; an unreachable service does not (only the invocations that need it fail).
package settings

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Error names the setting that is wrong.
type Error struct {
	Name    string
	Problem string
}

func (e *Error) Error() string { return fmt.Sprintf("setting %s: %s", e.Name, e.Problem) }

// Cosmos is how to reach Cosmos DB: a key from a connection string, or an endpoint with Entra ID
// (managed identity via azidentity).
type Cosmos struct {
	Endpoint string
	Key      string // empty: token credential
	ClientID string // user-assigned managed identity, if any
}

// EventHubs is how to reach the Event Hubs namespace.
type EventHubs struct {
	ConnectionString string // SAS (or the emulator's UseDevelopmentEmulator=true)
	Namespace        string // fully qualified namespace, with Entra ID
	ClientID         string
}

// Storage is how to reach the data storage account (dead letters, Capture, reports).
type Storage struct {
	ConnectionString string
	BlobServiceURL   string // with Entra ID
	ClientID         string
}

// Topic is an Event Grid topic to publish CloudEvents to.
type Topic struct {
	Name     string
	Endpoint string // https://<topic>.<region>-1.eventgrid.azure.net/api/events
	Key      string // empty: Entra ID
	ClientID string
}

// Config is the whole validated configuration. A nil service means "embedded default".
type Config struct {
	Port     int
	DataDir  string
	LogLevel slog.Level

	Cosmos    *Cosmos
	EventHubs *EventHubs
	Storage   *Storage
	Topics    map[string]*Topic // by setting prefix: AnalyticsEventsTopic, ProductEventsTopic

	CosmosDatabase         string
	CosmosPreferredRegions []string
	CosmosCreateContainers bool

	RecentlyViewedTTL time.Duration
	CaptureContainer  string
	PartnerWebhooks   []string

	// PartnerPrincipals maps an Entra application (client) id or service principal object id to a
	// partner id, for partners calling the feedback API through App Service Authentication
	// (PARTNER_PRINCIPALS, a JSON object). Empty: Entra callers are not partners.
	PartnerPrincipals map[string]string
	// FeedbackRatePerMinute is the feedback requests one partner may make per minute
	// (FEEDBACK_RATE_LIMIT_PER_MINUTE, default 600).
	FeedbackRatePerMinute int
}

// DefaultPort is used when FUNCTIONS_CUSTOMHANDLER_PORT is unset (the host always sets it).
const DefaultPort = 8080

// DefaultDataDir is LOCAL_DATA_DIR's default, relative to the working directory.
const DefaultDataDir = ".data"

// Load reads the configuration through getenv (os.Getenv in main).
func Load(getenv func(string) string) (*Config, error) {
	c := &Config{Topics: map[string]*Topic{}}
	var err error
	if c.Port, err = intSetting(getenv, "FUNCTIONS_CUSTOMHANDLER_PORT", DefaultPort, 1, 65535); err != nil {
		return nil, err
	}
	c.DataDir = str(getenv, "LOCAL_DATA_DIR", DefaultDataDir)
	if c.DataDir, err = filepath.Abs(c.DataDir); err != nil {
		return nil, &Error{"LOCAL_DATA_DIR", err.Error()}
	}
	if err := c.LogLevel.UnmarshalText([]byte(str(getenv, "LOG_LEVEL", "info"))); err != nil {
		return nil, &Error{"LOG_LEVEL", "want debug, info, warn or error"}
	}
	if c.Cosmos, err = loadCosmos(getenv); err != nil {
		return nil, err
	}
	if c.EventHubs, err = loadEventHubs(getenv); err != nil {
		return nil, err
	}
	if c.Storage, err = loadStorage(getenv); err != nil {
		return nil, err
	}
	for _, name := range []string{AnalyticsTopic, ProductTopic} {
		t, err := loadTopic(getenv, name)
		if err != nil {
			return nil, err
		}
		if t != nil {
			c.Topics[name] = t
		}
	}
	c.CosmosDatabase = str(getenv, "COSMOS_DATABASE", "contoso")
	c.CosmosPreferredRegions = list(getenv("COSMOS_PREFERRED_REGIONS"))
	if c.CosmosCreateContainers, err = boolSetting(getenv, "COSMOS_CREATE_CONTAINERS"); err != nil {
		return nil, err
	}
	days, err := intSetting(getenv, "RECENTLY_VIEWED_TTL_DAYS", 30, 1, 3650)
	if err != nil {
		return nil, err
	}
	c.RecentlyViewedTTL = time.Duration(days) * 24 * time.Hour
	c.CaptureContainer = str(getenv, "CAPTURE_CONTAINER", BlobCapture)
	for _, u := range list(getenv("LOCAL_PARTNER_WEBHOOKS")) {
		if err := checkURL(u, "http", "https"); err != nil {
			return nil, &Error{"LOCAL_PARTNER_WEBHOOKS", err.Error()}
		}
		c.PartnerWebhooks = append(c.PartnerWebhooks, u)
	}
	if c.PartnerPrincipals, err = partnerPrincipals(getenv("PARTNER_PRINCIPALS")); err != nil {
		return nil, err
	}
	if c.FeedbackRatePerMinute, err = intSetting(getenv, "FEEDBACK_RATE_LIMIT_PER_MINUTE", 600, 1, 1000000); err != nil {
		return nil, err
	}
	return c, nil
}

// partnerPrincipals parses PARTNER_PRINCIPALS: {"<Entra app or object id>":"<partnerId>",...}. A
// partner id is what follows "partner-" in that partner's function key name: 1 to 64 lower-case
// letters, digits, '.', '_' or '-', starting with a letter or digit (pkg/feedback.ValidPartnerID).
func partnerPrincipals(v string) (map[string]string, error) {
	const name = "PARTNER_PRINCIPALS"
	v = strings.TrimSpace(v)
	if v == "" {
		return map[string]string{}, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(v), &m); err != nil || m == nil {
		return nil, &Error{name, `want a JSON object mapping Entra application or object ids to partner ids, e.g. {"11111111-2222-3333-4444-555555555555":"acme"}`}
	}
	for id, partner := range m {
		if strings.TrimSpace(id) == "" || strings.TrimSpace(id) != id {
			return nil, &Error{name, fmt.Sprintf("principal id %q must be non-empty with no surrounding spaces", id)}
		}
		if !partnerIDPattern.MatchString(partner) {
			return nil, &Error{name, fmt.Sprintf("partner id %q (for principal %s) must be 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", partner, id)}
		}
	}
	return m, nil
}

var partnerIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Modes describes, per service, whether Azure or the embedded default is used (logged at start-up).
func (c *Config) Modes() []any {
	mode := func(azure bool, what string) string {
		if azure {
			return "azure (" + what + ")"
		}
		return "embedded (" + c.DataDir + ")"
	}
	out := []any{
		"cosmos", mode(c.Cosmos != nil, endpointOf(c.Cosmos)),
		"eventHubs", mode(c.EventHubs != nil, nsOf(c.EventHubs)),
		"storage", mode(c.Storage != nil, "blob"),
	}
	for _, name := range []string{AnalyticsTopic, ProductTopic} {
		t := c.Topics[name]
		ep := ""
		if t != nil {
			ep = t.Endpoint
		}
		out = append(out, name, mode(t != nil, ep))
	}
	return out
}

func endpointOf(c *Cosmos) string {
	if c == nil {
		return ""
	}
	return c.Endpoint
}

func nsOf(e *EventHubs) string {
	if e == nil {
		return ""
	}
	if e.Namespace != "" {
		return e.Namespace
	}
	return "connection string"
}

func loadCosmos(getenv func(string) string) (*Cosmos, error) {
	name := CosmosConnection
	clientID := clientIDFor(getenv, name)
	if cs := strings.TrimSpace(getenv(name)); cs != "" {
		kv, err := parseConnString(cs)
		if err != nil {
			return nil, &Error{name, err.Error()}
		}
		ep, key := kv["accountendpoint"], kv["accountkey"]
		if ep == "" || key == "" {
			return nil, &Error{name, "want AccountEndpoint=https://<account>.documents.azure.com:443/;AccountKey=<key>;"}
		}
		if err := checkURL(ep, "https", "http"); err != nil {
			return nil, &Error{name, "AccountEndpoint: " + err.Error()}
		}
		return &Cosmos{Endpoint: ep, Key: key, ClientID: clientID}, nil
	}
	if ep := strings.TrimSpace(getenv(name + "__accountEndpoint")); ep != "" {
		if err := checkURL(ep, "https"); err != nil {
			return nil, &Error{name + "__accountEndpoint", err.Error()}
		}
		return &Cosmos{Endpoint: ep, ClientID: clientID}, nil
	}
	return nil, nil
}

func loadEventHubs(getenv func(string) string) (*EventHubs, error) {
	name := EventHubsConnection
	clientID := clientIDFor(getenv, name)
	if cs := strings.TrimSpace(getenv(name)); cs != "" {
		kv, err := parseConnString(cs)
		if err != nil {
			return nil, &Error{name, err.Error()}
		}
		if kv["endpoint"] == "" || (kv["sharedaccesskeyname"] == "" && kv["sharedaccesssignature"] == "") {
			return nil, &Error{name, "want Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=...;SharedAccessKey=..."}
		}
		if err := checkURL(kv["endpoint"], "sb"); err != nil {
			return nil, &Error{name, "Endpoint: " + err.Error()}
		}
		if kv["entitypath"] != "" {
			return nil, &Error{name, "use a namespace-level connection string (no EntityPath): the code uses more than one hub"}
		}
		return &EventHubs{ConnectionString: cs, ClientID: clientID}, nil
	}
	if ns := strings.TrimSpace(getenv(name + "__fullyQualifiedNamespace")); ns != "" {
		if strings.Contains(ns, "://") || strings.Contains(ns, "/") {
			return nil, &Error{name + "__fullyQualifiedNamespace", "want a host name like <namespace>.servicebus.windows.net"}
		}
		return &EventHubs{Namespace: ns, ClientID: clientID}, nil
	}
	return nil, nil
}

func loadStorage(getenv func(string) string) (*Storage, error) {
	name := StorageConnection
	clientID := clientIDFor(getenv, name)
	if cs := strings.TrimSpace(getenv(name)); cs != "" {
		if strings.EqualFold(cs, "UseDevelopmentStorage=true") {
			return &Storage{ConnectionString: AzuriteConnectionString, ClientID: clientID}, nil
		}
		kv, err := parseConnString(cs)
		if err != nil {
			return nil, &Error{name, err.Error()}
		}
		if kv["blobendpoint"] == "" && kv["accountname"] == "" {
			return nil, &Error{name, "want an account connection string (AccountName/AccountKey or BlobEndpoint/SharedAccessSignature)"}
		}
		return &Storage{ConnectionString: cs, ClientID: clientID}, nil
	}
	if u := strings.TrimSpace(getenv(name + "__blobServiceUri")); u != "" {
		if err := checkURL(u, "https", "http"); err != nil {
			return nil, &Error{name + "__blobServiceUri", err.Error()}
		}
		return &Storage{BlobServiceURL: u, ClientID: clientID}, nil
	}
	return nil, nil
}

// AzuriteConnectionString is what UseDevelopmentStorage=true means for the data account.
const AzuriteConnectionString = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"

func loadTopic(getenv func(string) string, name string) (*Topic, error) {
	ep := strings.TrimSpace(getenv(name + "__topicEndpointUri"))
	key := strings.TrimSpace(getenv(name + "__topicKey"))
	if ep == "" {
		if key != "" {
			return nil, &Error{name + "__topicKey", "set without " + name + "__topicEndpointUri"}
		}
		return nil, nil
	}
	if err := checkURL(ep, "https"); err != nil {
		return nil, &Error{name + "__topicEndpointUri", err.Error() + " (Event Grid accepts only https)"}
	}
	u, _ := url.Parse(ep)
	if u.Path == "" || u.Path == "/" {
		ep = strings.TrimRight(ep, "/") + "/api/events"
	}
	return &Topic{Name: name, Endpoint: ep, Key: key, ClientID: clientIDFor(getenv, name)}, nil
}

func clientIDFor(getenv func(string) string, prefix string) string {
	return strings.TrimSpace(getenv(prefix + "__clientId"))
}

func parseConnString(cs string) (map[string]string, error) {
	kv := map[string]string{}
	for _, part := range strings.Split(cs, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("not a connection string: segment %q has no key=value", redact(part))
		}
		kv[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	if len(kv) == 0 {
		return nil, fmt.Errorf("empty connection string")
	}
	return kv, nil
}

// redact keeps secrets out of error messages.
func redact(s string) string {
	if len(s) > 12 {
		return s[:6] + "…"
	}
	return s
}

func checkURL(s string, schemes ...string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	for _, sc := range schemes {
		if strings.EqualFold(u.Scheme, sc) {
			return nil
		}
	}
	return fmt.Errorf("%q: scheme must be %s", s, strings.Join(schemes, " or "))
}

func str(getenv func(string) string, name, def string) string {
	if v := strings.TrimSpace(getenv(name)); v != "" {
		return v
	}
	return def
}

func intSetting(getenv func(string) string, name string, def, min, max int) (int, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, &Error{name, fmt.Sprintf("%q is not an integer between %d and %d", v, min, max)}
	}
	return n, nil
}

func boolSetting(getenv func(string) string, name string) (bool, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &Error{name, fmt.Sprintf("%q is not true or false", v)}
	}
	return b, nil
}

func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
