package settings

// AppSetting describes one application setting that the handler reads (directly, or through the
// Azure SDK credential it builds). The catalog is the single list that local.settings.json, the docs
// and the Bicep app settings are checked against (see infra/contract_test.go).
type AppSetting struct {
	Name        string
	Description string
	Default     string
	// LocalOnly settings exist for local runs and tests; the Azure deployment must not set them.
	LocalOnly bool
}

// AppSettings lists every setting the handler reads, with its default.
func AppSettings() []AppSetting {
	return []AppSetting{
		// Identity-based connections (managed identity in Azure). The trigger bindings and the Go
		// adapters share these names; with a user-assigned identity each prefix also carries
		// <PREFIX>__credential=managedidentity and <PREFIX>__clientId.
		{Name: CosmosConnection + "__accountEndpoint", Description: "Cosmos DB account endpoint, https://<account>.documents.azure.com:443/"},
		{Name: EventHubsConnection + "__fullyQualifiedNamespace", Description: "Event Hubs namespace host name (<ns>.servicebus.windows.net; the Geo-DR alias host when paired)"},
		{Name: StorageConnection + "__blobServiceUri", Description: "Blob endpoint of the data account (dead letters, reports, Capture)"},
		{Name: AnalyticsTopic + "__topicEndpointUri", Description: "Event Grid topic endpoint for analytics events"},
		{Name: ProductTopic + "__topicEndpointUri", Description: "Event Grid topic endpoint for product events"},
		{Name: "AZURE_CLIENT_ID", Description: "client id of the user-assigned managed identity, read by azidentity"},

		{Name: "COSMOS_DATABASE", Description: "Cosmos DB database name", Default: "contoso"},
		{Name: "COSMOS_PREFERRED_REGIONS", Description: "comma-separated Azure regions, nearest first (e.g. westeurope,northeurope)"},
		{Name: "RECENTLY_VIEWED_TTL_DAYS", Description: "days a recently-viewed list lives after its last update", Default: "30"},
		{Name: "CAPTURE_CONTAINER", Description: "blob container that Event Hubs Capture writes to", Default: BlobCapture},
		{Name: "LOG_LEVEL", Description: "handler log level: debug, info, warn, error", Default: "info"},
		{Name: "PARTNER_PRINCIPALS", Description: "JSON object mapping Entra app/object ids (App Service Authentication callers) to partner ids", Default: "{}"},
		{Name: "FEEDBACK_RATE_LIMIT_PER_MINUTE", Description: "accepted feedback requests per partner per minute", Default: "600"},

		// Connection strings and keys are for local runs and emulators only: in Azure an exact
		// connection string would take precedence over the identity settings above.
		{Name: CosmosConnection, Description: "Cosmos DB connection string (local/emulator only)", LocalOnly: true},
		{Name: EventHubsConnection, Description: "Event Hubs connection string (local/emulator only)", LocalOnly: true},
		{Name: StorageConnection, Description: "Storage connection string (local/Azurite only)", LocalOnly: true},
		{Name: AnalyticsTopic + "__topicKey", Description: "Event Grid topic key (local tests only; Azure uses managed identity)", LocalOnly: true},
		{Name: ProductTopic + "__topicKey", Description: "Event Grid topic key (local tests only; Azure uses managed identity)", LocalOnly: true},
		{Name: "LOCAL_DATA_DIR", Description: "directory for the embedded stores and publishers", LocalOnly: true},
		{Name: "LOCAL_PARTNER_WEBHOOKS", Description: "comma-separated webhook URLs the embedded product publisher delivers to", LocalOnly: true},
		{Name: "COSMOS_CREATE_CONTAINERS", Description: "create missing Cosmos containers at start-up (emulator only; Bicep owns them in Azure)", LocalOnly: true},
	}
}
