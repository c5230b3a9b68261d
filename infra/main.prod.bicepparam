// Production: two regions (DR), Premium Event Hubs with geo-replication, Flex Consumption with a
// passive standby app in the secondary region.
//   az group create -n <rg> -l westeurope
//   az group create -n <rg>-dr -l northeurope
//   SECONDARY_RESOURCE_GROUP=<rg>-dr make deploy ENV=prod RG=<rg>
// The primary region is the resource group's region; secondaryLocation must differ from it.
// Environment variables read at deployment time:
//   SECONDARY_LOCATION, SECONDARY_RESOURCE_GROUP  DR region and its (existing) resource group
//   ACTIVE_REGION                 primary (default) or secondary after a failover (docs/dr.md)
//   DEPLOY_CAPTURE_SUBSCRIPTION   true once CaptureFileCreated is published
//   OPERATOR_PRINCIPAL_ID         an operators' group object id (set OPERATOR_PRINCIPAL_TYPE=Group)
//   FUNCTIONS_PLAN                flex (default) or premium
//   EVENTHUBS_SKU                 Premium (default, geo-replication) or Standard (Geo-DR alias)
using './main.bicep'

param environmentName = 'prod'
// The ternaries keep the values within the parameters' allowed literals.
param plan = readEnvironmentVariable('FUNCTIONS_PLAN', 'flex') == 'premium' ? 'premium' : 'flex'

param secondaryLocation = readEnvironmentVariable('SECONDARY_LOCATION', 'northeurope')
param secondaryResourceGroupName = readEnvironmentVariable('SECONDARY_RESOURCE_GROUP', '')
param activeRegion = readEnvironmentVariable('ACTIVE_REGION', 'primary') == 'secondary' ? 'secondary' : 'primary'

// Premium: events, offsets and metadata replicated to the secondary region (RPO bounded by the lag).
// Precondition (UNCONFIRMED, check before the first prod deployment; the tier cannot be changed in
// place later): geo-replicated namespaces use string offsets, which the Functions Event Hubs
// extension handles from 6.5 on; the standard 4.x bundle may still carry 5.x (docs/dr.md). Without
// it, EVENTHUBS_SKU=Standard gives a Geo-DR alias pairing (metadata only) instead.
param eventHubsSku = readEnvironmentVariable('EVENTHUBS_SKU', 'Premium') == 'Standard' ? 'Standard' : 'Premium'
param eventHubsMaxThroughputUnits = 8
param eventHubsCapacity = 1
param eventHubsRetentionDays = 7
param eventHubsMaxReplicationLagSeconds = 300
param clickstreamPartitionCount = 16
param feedbackPartitionCount = 4
param captureIntervalSeconds = 300
param captureRetentionDays = 30

// recentlyViewed: ~1 read + 1 replace (~11 RU, no index) per viewer per batch; ~1.3k RU/s on
// average for 10M clicks/day, ~13k RU/s at a 10x peak. Its throughput type (dedicated) is fixed
// at creation.
param cosmosDatabaseMaxThroughput = 4000
param cosmosRecentlyViewedMaxThroughput = 15000
param cosmosContinuousBackupTier = 'Continuous30Days'

param dataStorageSku = 'Standard_RAGZRS'
param hostStorageSku = 'Standard_ZRS'
param zoneRedundant = true

param flexMaximumInstanceCount = 100
param flexInstanceMemoryMB = 2048
param flexAlwaysReadyHttp = 1
param premiumMaximumElasticWorkerCount = 20
param premiumMinimumInstances = 1

param logLevel = 'info'
param recentlyViewedTtlDays = 30
param feedbackRateLimitPerMinute = 600

// Entra app/object id -> partner id; and the app registration partners request tokens for.
param partnerPrincipals = {}
param partnerAuthClientId = ''

// One entry per partner webhook. Example (the endpoint must pass the CloudEvents validation
// handshake when the subscription is created):
// {
//   name: 'fabrikam-products'
//   topic: 'ProductEventsTopic'
//   endpoint: 'https://events.fabrikam.example/contoso'
//   includedEventTypes: [
//     'com.contoso.product.price.changed'
//     'com.contoso.product.availability.changed'
//   ]
//   subjectBeginsWith: '/products/shoes/'
//   maxDeliveryAttempts: 30
//   eventTimeToLiveInMinutes: 1440
//   azureActiveDirectoryTenantId: '<fabrikam tenant id>'
//   azureActiveDirectoryApplicationIdOrUri: 'api://fabrikam-contoso-webhook'
// }
param partnerSubscriptions = []

param deployCaptureSubscription = bool(readEnvironmentVariable('DEPLOY_CAPTURE_SUBSCRIPTION', 'false'))
param operatorPrincipalId = readEnvironmentVariable('OPERATOR_PRINCIPAL_ID', '')
param operatorPrincipalType = readEnvironmentVariable('OPERATOR_PRINCIPAL_TYPE', 'Group') == 'User' ? 'User' : 'Group'
