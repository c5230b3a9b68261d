package settings

// The names in this file are the contract between the code, the function.json bindings and infra/.
// A test in infra/ checks that every one of them is provisioned by the Bicep templates with the same
// name (and partition key), so a rename here without one there fails the build.

// Connection prefixes, spelled exactly as the bindings' "connection" properties.
const (
	CosmosConnection    = "CosmosDBConnection"
	EventHubsConnection = "EventHubsConnection"
	StorageConnection   = "StorageConnection"
	AnalyticsTopic      = "AnalyticsEventsTopic"
	ProductTopic        = "ProductEventsTopic"
)

// Event Hubs entities.
const (
	HubClickstream      = "clickstream"
	HubFeedback         = "feedback"
	ConsumerGroupRecent = "recently-viewed"
	ConsumerGroupTrends = "trends"
)

// Container describes one Cosmos DB container: its name and partition key path. DefaultTTLSeconds is
// the container default time to live: -1 means "on, per item", 0 means off.
type Container struct {
	Name              string
	PartitionKey      string
	DefaultTTLSeconds int
}

// Cosmos DB containers the code or the bindings use.
var (
	ContainerProducts        = Container{Name: "products", PartitionKey: "/id", DefaultTTLSeconds: -1}
	ContainerLeases          = Container{Name: "leases", PartitionKey: "/id"}
	ContainerRecentlyViewed  = Container{Name: "recentlyViewed", PartitionKey: "/userId", DefaultTTLSeconds: -1}
	ContainerTrendAggregates = Container{Name: "trendAggregates", PartitionKey: "/pk", DefaultTTLSeconds: -1}
	ContainerTrendSnapshots  = Container{Name: "trendSnapshots", PartitionKey: "/pk", DefaultTTLSeconds: -1}
	ContainerPublishedState  = Container{Name: "publishedState", PartitionKey: "/productId"}
	ContainerOutbox          = Container{Name: "outbox", PartitionKey: "/topic", DefaultTTLSeconds: -1}
	ContainerIdempotency     = Container{Name: "idempotency", PartitionKey: "/partnerId", DefaultTTLSeconds: -1}
	ContainerRecommendations = Container{Name: "recommendations", PartitionKey: "/productId", DefaultTTLSeconds: -1}
	ContainerJobState        = Container{Name: "jobState", PartitionKey: "/job", DefaultTTLSeconds: -1}
)

// Containers lists every Cosmos DB container above.
func Containers() []Container {
	return []Container{
		ContainerProducts, ContainerLeases, ContainerRecentlyViewed, ContainerTrendAggregates,
		ContainerTrendSnapshots, ContainerPublishedState, ContainerOutbox, ContainerIdempotency,
		ContainerRecommendations, ContainerJobState,
	}
}

// Blob containers (StorageConnection account).
const (
	BlobDeadLetter = "deadletter"
	BlobReports    = "reports"
	BlobCapture    = "capture" // default of CAPTURE_CONTAINER
)
