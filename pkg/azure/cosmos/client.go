// Package cosmos is the Azure Cosmos DB (NoSQL API) adapter: it owns the account connection (key or
// Entra ID), the creation of the database and containers for local runs, and the mapping of
// docstore.Collection onto items (ETags, per-item ttl, status codes to docstore errors). Nothing
// outside this package imports azcosmos.
package cosmos

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/contoso/eventpipeline/pkg/azure/identity"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// ClientOptions tune the connection. The zero value is right for production.
type ClientOptions struct {
	// PreferredRegions orders the account's regions for reads and failover (COSMOS_PREFERRED_REGIONS).
	PreferredRegions []string
	// Transport replaces the HTTP client. Tests use it to accept the stand-in's self-signed,
	// expired certificate; production leaves it nil for the SDK's tuned client.
	Transport policy.Transporter
	// Retry replaces azcore's retry policy; the zero value keeps the SDK defaults. Tests set
	// MaxRetries to -1 so a failure shows at once instead of after the backoff.
	Retry policy.RetryOptions
}

// Client is a connection to one Cosmos DB account, shared by all collections. It is safe for
// concurrent use.
type Client struct {
	sdk *azcosmos.Client
}

// NewClient connects to the account in cfg: with its key when set, otherwise with Entra ID (the
// managed identity cfg.ClientID, or the default credential chain). Nothing is sent until first use,
// so an unreachable account does not stop start-up.
func NewClient(cfg *settings.Cosmos, opts ClientOptions) (*Client, error) {
	if cfg == nil || cfg.Endpoint == "" {
		return nil, errors.New("cosmos: no account endpoint configured")
	}
	o := &azcosmos.ClientOptions{PreferredRegions: opts.PreferredRegions}
	o.Transport = opts.Transport
	o.Retry = opts.Retry
	var (
		sdk *azcosmos.Client
		err error
	)
	if cfg.Key != "" {
		key, kerr := azcosmos.NewKeyCredential(cfg.Key)
		if kerr != nil {
			// The key itself must not appear in the message.
			return nil, fmt.Errorf("cosmos %s: account key is not valid base64", cfg.Endpoint)
		}
		sdk, err = azcosmos.NewClientWithKey(cfg.Endpoint, key, o)
	} else {
		cred, cerr := identity.Credential(cfg.ClientID)
		if cerr != nil {
			return nil, fmt.Errorf("cosmos %s: %w", cfg.Endpoint, cerr)
		}
		sdk, err = azcosmos.NewClient(cfg.Endpoint, cred, o)
	}
	if err != nil {
		return nil, fmt.Errorf("cosmos %s: %w", cfg.Endpoint, err)
	}
	return &Client{sdk: sdk}, nil
}

// Close releases the SDK's shared caches for the account. The client must not be used afterwards.
func (c *Client) Close() { c.sdk.Close() }

// EnsureContainers creates the database and any of containers that do not exist yet. Existing ones
// are left as they are (their time to live is not changed). In Azure the infrastructure templates own
// the containers; this is for local runs (COSMOS_CREATE_CONTAINERS) and tests.
func (c *Client) EnsureContainers(ctx context.Context, database string, containers []settings.Container) error {
	_, err := c.sdk.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: database}, nil)
	if err != nil && statusOf(err) != http.StatusConflict {
		return fmt.Errorf("cosmos create database %s: %w", database, err)
	}
	db, err := c.sdk.NewDatabase(database)
	if err != nil {
		return fmt.Errorf("cosmos database %q: %w", database, err)
	}
	for _, ct := range containers {
		props := azcosmos.ContainerProperties{
			ID: ct.Name,
			PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{
				Kind:  azcosmos.PartitionKeyKindHash,
				Paths: []string{ct.PartitionKey},
			},
		}
		// Cosmos DB has no "off" value: TTL is off when defaultTtl is absent.
		if ct.DefaultTTLSeconds != 0 {
			ttl := int32(ct.DefaultTTLSeconds)
			props.DefaultTimeToLive = &ttl
		}
		_, err := db.CreateContainer(ctx, props, nil)
		if err != nil && statusOf(err) != http.StatusConflict {
			return fmt.Errorf("cosmos create container %s/%s: %w", database, ct.Name, err)
		}
	}
	return nil
}

// statusOf is the HTTP status of a service error, or 0 when the request got no answer.
func statusOf(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}
