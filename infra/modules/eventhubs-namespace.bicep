// A bare Event Hubs namespace in the secondary region: the passive partner of a Standard Geo-DR
// pairing. Pairing replicates entities (hubs, consumer groups, Capture settings) from the primary,
// so this namespace must stay empty; it lives in the secondary region's resource group so it can be
// failed over while the primary region (and its resource group metadata) is unavailable.
// Role assignments are NOT replicated by Geo-DR, so the data-plane roles are granted here too.

param name string
param location string
param tags object = {}

@allowed([
  'Standard'
])
param sku string = 'Standard'
param capacity int = 1
param maximumThroughputUnits int = 4
param zoneRedundant bool = false

@description('Identity that Capture uses to write to the data account (Capture settings are replicated, the identity must be on this namespace too).')
param captureIdentityId string

@description('Principals that receive and send events: [{ principalId, principalType }].')
param dataPrincipals array = []

var dataReceiver = 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
var dataSender = '2b629674-e913-4c01-ae53-ef4638d8f975'

resource namespace 'Microsoft.EventHub/namespaces@2026-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
    tier: sku
    capacity: capacity
  }
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${captureIdentityId}': {}
    }
  }
  properties: {
    disableLocalAuth: true
    kafkaEnabled: true
    minimumTlsVersion: '1.2'
    isAutoInflateEnabled: maximumThroughputUnits > capacity
    maximumThroughputUnits: maximumThroughputUnits > capacity ? maximumThroughputUnits : 0
    zoneRedundant: zoneRedundant
    publicNetworkAccess: 'Enabled'
  }
}

resource receiverRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for p in dataPrincipals: {
  name: guid(namespace.id, p.principalId, dataReceiver)
  scope: namespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataReceiver)
    principalId: p.principalId
    principalType: p.principalType
  }
}]

resource senderRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for p in dataPrincipals: {
  name: guid(namespace.id, p.principalId, dataSender)
  scope: namespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSender)
    principalId: p.principalId
    principalType: p.principalType
  }
}]

output id string = namespace.id
output name string = namespace.name
