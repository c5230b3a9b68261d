// A user-assigned managed identity. One per Function App (per region) and one for the platform
// services that deliver on our behalf (Event Hubs Capture, Event Grid dead-lettering).

@description('Identity name.')
param name string

@description('Region of the identity.')
param location string

param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
