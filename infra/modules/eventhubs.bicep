// The Event Hubs namespace: hubs, consumer groups, Capture of the clickstream to Blob (Avro), and
// regional redundancy: Premium geo-replication (data + metadata + consumer offsets) when the SKU
// is Premium and a secondary region is given, or a Standard Geo-DR alias (metadata only) when a
// partner namespace is given. Local (SAS) auth is off: clients use Entra ID.

param name string
param location string
param tags object = {}

@allowed([
  'Standard'
  'Premium'
])
param sku string = 'Standard'

@description('Throughput units (Standard) or processing units (Premium).')
param capacity int = 1

@description('Standard only: auto-inflate ceiling in throughput units (0 or <= capacity disables auto-inflate).')
param maximumThroughputUnits int = 0

param zoneRedundant bool = false

@description('Hubs: [{ name, partitionCount, capture }].')
param hubs array

@description('Consumer groups: [{ hub, name }].')
param consumerGroups array = []

@description('Event retention in days (Standard 1-7, Premium 1-90).')
param retentionDays int = 1

@description('Identity that Capture uses to write blobs (needs Storage Blob Data Contributor on the data account).')
param captureIdentityId string
param captureStorageAccountId string
param captureContainerName string

@minValue(60)
@maxValue(900)
param captureIntervalSeconds int = 300

@minValue(10485760)
@maxValue(524288000)
param captureSizeLimitBytes int = 314572800

@description('Premium only: region of the geo-replica; empty for none.')
param geoReplicationLocation string = ''

@description('Premium geo-replication: maximum replication lag in seconds (0 = synchronous, else 300-86400).')
param maxReplicationLagSeconds int = 300

@description('Standard only: resource id of the (empty) secondary namespace to pair with; empty for none.')
param geoDrPartnerNamespaceId string = ''

@description('Name of the Geo-DR alias (its host name is what clients use).')
param geoDrAliasName string = ''

var isPremium = sku == 'Premium'
var useGeoReplication = isPremium && !empty(geoReplicationLocation)
var useGeoDr = !isPremium && !empty(geoDrPartnerNamespaceId)
var autoInflate = !isPremium && maximumThroughputUnits > capacity

// Capture's default layout; CaptureRollup and CaptureFileCreated parse this path.
var captureArchiveNameFormat = '{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}'

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
    isAutoInflateEnabled: autoInflate
    maximumThroughputUnits: autoInflate ? maximumThroughputUnits : 0
    // Premium namespaces are zone redundant where the region has zones.
    zoneRedundant: isPremium ? null : zoneRedundant
    publicNetworkAccess: 'Enabled'
    geoDataReplication: useGeoReplication ? {
      maxReplicationLagDurationInSeconds: maxReplicationLagSeconds
      locations: [
        {
          locationName: location
          roleType: 'Primary'
        }
        {
          locationName: geoReplicationLocation
          roleType: 'Secondary'
        }
      ]
    } : null
  }
}

resource eventHubs 'Microsoft.EventHub/namespaces/eventhubs@2026-01-01' = [for h in hubs: {
  parent: namespace
  name: h.name
  properties: {
    partitionCount: h.partitionCount
    messageRetentionInDays: retentionDays
    captureDescription: h.capture ? {
      enabled: true
      encoding: 'Avro'
      intervalInSeconds: captureIntervalSeconds
      sizeLimitInBytes: captureSizeLimitBytes
      skipEmptyArchives: true
      destination: {
        name: 'EventHubArchive.AzureBlockBlob'
        identity: {
          type: 'UserAssigned'
          userAssignedIdentity: captureIdentityId
        }
        properties: {
          storageAccountResourceId: captureStorageAccountId
          blobContainer: captureContainerName
          archiveNameFormat: captureArchiveNameFormat
        }
      }
    } : null
  }
}]

resource hubConsumerGroups 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2026-01-01' = [for cg in consumerGroups: {
  name: '${namespace.name}/${cg.hub}/${cg.name}'
  properties: {}
  dependsOn: [
    eventHubs
  ]
}]

resource geoDrAlias 'Microsoft.EventHub/namespaces/disasterRecoveryConfigs@2026-01-01' = if (useGeoDr) {
  parent: namespace
  name: geoDrAliasName
  properties: {
    partnerNamespace: geoDrPartnerNamespaceId
  }
  dependsOn: [
    eventHubs
    hubConsumerGroups
  ]
}

// https://<ns>.servicebus.windows.net:443/ -> <ns>.servicebus.windows.net
var namespaceHost = split(split(namespace.properties.serviceBusEndpoint, '://')[1], ':')[0]
var aliasHost = '${geoDrAliasName}.${join(skip(split(namespaceHost, '.'), 1), '.')}'

output id string = namespace.id
output name string = namespace.name
output namespaceHost string = namespaceHost
@description('Host name clients use: the Geo-DR alias when paired (it follows a failover), else the namespace (stable under geo-replication).')
output clientHost string = useGeoDr ? aliasHost : namespaceHost
