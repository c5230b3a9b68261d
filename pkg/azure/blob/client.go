// Package blob is the Azure Blob Storage adapter for the data storage account (StorageConnection):
// it owns the account connection (connection string or Entra ID), container creation for local
// runs, and the dead-letter store. Later blob uses (Capture files, reports) build on the same Client.
// Nothing outside this package imports azblob.
package blob

import (
	"context"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/contoso/eventpipeline/pkg/azure/identity"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// Client is a connection to the storage account's Blob service. It is safe for concurrent use.
type Client struct {
	sdk *azblob.Client
}

// NewClient connects to the account in cfg: by connection string when set (Azurite locally),
// otherwise to BlobServiceURL with Entra ID (the managed identity cfg.ClientID, or the default
// credential chain). Nothing is sent until first use.
func NewClient(cfg *settings.Storage) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("blob: no storage account configured")
	}
	var (
		sdk *azblob.Client
		err error
	)
	switch {
	case cfg.ConnectionString != "":
		sdk, err = azblob.NewClientFromConnectionString(cfg.ConnectionString, nil)
		if err != nil {
			// The SDK's message can quote the connection string, which holds the account key.
			return nil, errors.New("blob: the storage connection string is not valid")
		}
	case cfg.BlobServiceURL != "":
		cred, cerr := identity.Credential(cfg.ClientID)
		if cerr != nil {
			return nil, fmt.Errorf("blob %s: %w", cfg.BlobServiceURL, cerr)
		}
		if sdk, err = azblob.NewClient(cfg.BlobServiceURL, cred, nil); err != nil {
			return nil, fmt.Errorf("blob %s: %w", cfg.BlobServiceURL, err)
		}
	default:
		return nil, errors.New("blob: neither a connection string nor a blob service URL is configured")
	}
	return &Client{sdk: sdk}, nil
}

// Azblob is the underlying SDK client, for blob uses that have no adapter type of their own yet.
func (c *Client) Azblob() *azblob.Client { return c.sdk }

// EnsureContainer creates the container if it does not exist. In Azure the infrastructure templates
// own the containers; this is for local runs and tests.
func (c *Client) EnsureContainer(ctx context.Context, name string) error {
	_, err := c.sdk.CreateContainer(ctx, name, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("blob create container %s: %w", name, err)
	}
	return nil
}
