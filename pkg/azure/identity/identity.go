// Package identity owns how the Azure adapters authenticate with Entra ID when no key or connection
// string is configured: a user-assigned managed identity when its client id is set, otherwise the
// DefaultAzureCredential chain (managed identity in Azure, developer sign-ins locally).
package identity

import (
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Credential returns the token credential for a connection whose <prefix>__clientId setting is
// clientID (empty when unset).
//
// With a client id the managed identity is used directly rather than through the default chain:
// the chain would also accept a developer or environment identity, and a deployed app that
// silently runs as someone else is harder to diagnose than one that fails to get a token.
func Credential(clientID string) (azcore.TokenCredential, error) {
	if clientID != "" {
		cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
			ID: azidentity.ClientID(clientID),
		})
		if err != nil {
			return nil, fmt.Errorf("managed identity %s: %w", clientID, err)
		}
		return cred, nil
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("default Azure credential: %w", err)
	}
	return cred, nil
}
