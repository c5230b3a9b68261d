// Contoso event pipeline: Event Hubs (clickstream, feedback, Capture), Cosmos DB, Event Grid
// topics and partner subscriptions, and the Go custom-handler Function App, identity-only.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p infra/main.<env>.bicepparam
//   (make deploy ENV=dev|prod RG=<rg>; walkthrough in docs/deploy.md, DR in docs/dr.md)
//
// With secondaryLocation set, the data services replicate to a second region and a passive
// standby Function App is deployed there (in secondaryResourceGroupName when given).

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

@description('Environment name, used in resource names and tags.')
@allowed([
  'dev'
  'test'
  'prod'
])
param environmentName string

@description('Short prefix for resource names (letters and digits).')
@minLength(2)
@maxLength(10)
param namePrefix string = 'contoso'

@description('Primary region. Defaults to the resource group region.')
param location string = resourceGroup().location

@description('Function App hosting: flex = Flex Consumption FC1 with functionAppConfig.runtime custom/1.0 (UNCONFIRMED per region, check first), premium = Elastic Premium EP1 Linux.')
@allowed([
  'flex'
  'premium'
])
param plan string = 'flex'

@description('Second region for DR (Cosmos replica, Event Hubs geo-replica or Geo-DR partner, standby Function App). Empty = single region.')
param secondaryLocation string = ''

@description('Existing resource group (normally in secondaryLocation) for the secondary-region resources. Empty = this resource group.')
param secondaryResourceGroupName string = ''

@description('Region whose Function App runs the background (non-HTTP) functions. Set to secondary after a failover.')
@allowed([
  'primary'
  'secondary'
])
param activeRegion string = 'primary'

@allowed([
  'Standard'
  'Premium'
])
@description('Event Hubs tier. Premium: geo-replication of data when secondaryLocation is set. Standard: Geo-DR alias pairing (metadata only).')
param eventHubsSku string = 'Standard'

@description('Throughput units (Standard) or processing units (Premium).')
param eventHubsCapacity int = 1

@description('Standard only: auto-inflate ceiling in throughput units.')
param eventHubsMaxThroughputUnits int = 4

@description('Event retention in days (Standard 1-7, Premium 1-90).')
param eventHubsRetentionDays int = 1

// Sizing: 10M clicks/day is ~116 events/s on average; with a 10x peak ~1,200 events/s of ~1 KB,
// i.e. ~1.2 MB/s. One partition takes ~1 MB/s or ~1,000 events/s of ingress, and a consumer group
// is read by at most one function instance per partition. 16 partitions keep peak ingress below a
// tenth of the per-partition ceiling and let 16 instances per consumer group drain a backlog (a
// 2-hour outage at peak, ~8.6M events, in ~10 minutes at ~1,000 events/s per instance). The count
// cannot be changed on Standard, so it is chosen for growth; more partitions would multiply the
// per-partition trend aggregates and checkpoints for no gain.
@description('Partitions of the clickstream hub (immutable on Standard).')
@minValue(1)
@maxValue(32)
param clickstreamPartitionCount int = 16

@minValue(1)
@maxValue(32)
param feedbackPartitionCount int = 4

@description('Extra consumer groups on the feedback hub, one per internal consumer.')
param feedbackConsumerGroups array = []

@description('Premium geo-replication: maximum replication lag in seconds (0 = synchronous; else 300-86400). Bounds the Event Hubs RPO.')
param eventHubsMaxReplicationLagSeconds int = 300

@minValue(60)
@maxValue(900)
param captureIntervalSeconds int = 300

@description('Days Capture files are kept in the data account.')
param captureRetentionDays int = 30

@description('Cosmos DB database name (COSMOS_DATABASE).')
param cosmosDatabaseName string = 'contoso'

@description('Autoscale maximum RU/s shared by the containers without dedicated throughput.')
param cosmosDatabaseMaxThroughput int = 1000

@description('Dedicated autoscale maximum RU/s for recentlyViewed (0 = share the database throughput).')
param cosmosRecentlyViewedMaxThroughput int = 0

@description('Cosmos DB free tier (one account per subscription).')
param cosmosEnableFreeTier bool = false

@allowed([
  'Continuous7Days'
  'Continuous30Days'
])
param cosmosContinuousBackupTier string = 'Continuous7Days'

@description('Zone redundancy for Cosmos DB and Standard Event Hubs (the region must have availability zones).')
param zoneRedundant bool = false

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
@description('Data account (dead letters, reports, Capture). Use a geo-redundant SKU when secondaryLocation is set.')
param dataStorageSku string = 'Standard_LRS'

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
])
@description('Host storage of each Function App (checkpoints, timers, keys, package); regional by design.')
param hostStorageSku string = 'Standard_LRS'

@minValue(40)
@maxValue(1000)
param flexMaximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
param flexInstanceMemoryMB int = 2048

@description('Flex always-ready instances for the HTTP group (0 = scale from zero, cold starts on GET).')
param flexAlwaysReadyHttp int = 0

@description('functionAppConfig.runtime.version for the custom runtime on Flex (UNCONFIRMED).')
param flexRuntimeVersion string = '1.0'

param premiumMaximumElasticWorkerCount int = 20
param premiumMinimumInstances int = 1

param corsAllowedOrigins array = []

@description('Allow basic-auth publishing to the SCM site (only if `func azure functionapp publish` cannot use your Entra sign-in).')
param allowBasicPublishingAuth bool = false

@allowed([
  'debug'
  'info'
  'warn'
  'error'
])
param logLevel string = 'info'

@minValue(1)
param recentlyViewedTtlDays int = 30

@minValue(1)
param feedbackRateLimitPerMinute int = 600

@description('Entra app/object id -> partner id, for partners calling PartnerFeedback with Entra tokens (PARTNER_PRINCIPALS).')
param partnerPrincipals object = {}

@description('Client id of the Entra app registration partners request tokens for; enables App Service Authentication. Empty = off.')
param partnerAuthClientId string = ''

@description('Partner webhook subscriptions on the Event Grid topics.')
param partnerSubscriptions partnerSubscription[] = []

@description('Create the CaptureFileCreated Event Grid subscription. false on the first deployment (the function must exist first).')
param deployCaptureSubscription bool = false

@allowed([
  'CloudEventSchemaV1_0'
  'EventGridSchema'
])
@description('Schema in which CaptureFileCreated receives Microsoft.EventHub.CaptureFileCreated.')
param captureEventDeliverySchema string = 'CloudEventSchemaV1_0'

@allowed([
  'WithinGeopair'
  'WithinRegion'
])
@description('Event Grid topic data residency: WithinGeopair allows Microsoft-initiated failover to the paired region.')
param eventGridDataResidency string = 'WithinGeopair'

@description('Object id of a user or group granted data access for operations (send a click, read Cosmos, upload a package). Empty = none.')
param operatorPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

param tags object = {}

@description('A partner webhook subscription on ProductEventsTopic (default) or AnalyticsEventsTopic.')
type partnerSubscription = {
  @description('Subscription name: 3-64 letters, digits and hyphens.')
  name: string

  @description('Topic, by its app-setting prefix. Default ProductEventsTopic.')
  topic: ('ProductEventsTopic' | 'AnalyticsEventsTopic')?

  @description('HTTPS endpoint; it must answer the CloudEvents webhook validation (OPTIONS) when the subscription is created.')
  endpoint: string

  @description('CloudEvents types to deliver; omit for all.')
  includedEventTypes: string[]?

  @description('Subject prefix filter, e.g. /products/shoes/.')
  subjectBeginsWith: string?

  subjectEndsWith: string?

  @description('1-30, default 30.')
  maxDeliveryAttempts: int?

  @description('1-1440 minutes, default 1440.')
  eventTimeToLiveInMinutes: int?

  @description('1-5000, default 1.')
  maxEventsPerBatch: int?

  @description('Tenant of the partner app registration; default this tenant.')
  azureActiveDirectoryTenantId: string?

  @description('App id or URI of the partner app registration; Event Grid then sends an Entra bearer token.')
  azureActiveDirectoryApplicationIdOrUri: string?
}

// ---------------------------------------------------------------------------------------------
// Contract: the names the code (pkg/settings) and the bindings (functions/*/function.json) use.
// infra/contract_test.go reads these declarations; keep them literal.
// ---------------------------------------------------------------------------------------------

var captureContainerName = 'capture'

var dataBlobContainers = [
  'deadletter'
  'reports'
  captureContainerName
]

var eventHubs = [
  {
    name: 'clickstream'
    partitionCount: clickstreamPartitionCount
    capture: true
  }
  {
    name: 'feedback'
    partitionCount: feedbackPartitionCount
    capture: false
  }
]

var eventHubConsumerGroups = [
  {
    hub: 'clickstream'
    name: 'recently-viewed'
  }
  {
    hub: 'clickstream'
    name: 'trends'
  }
]

// defaultTtl: -1 = TTL on, set per item by the code; 0 = off. indexedPaths: only these paths are
// indexed (write-heavy containers read by id and partition key; a filter or ORDER BY on any other
// path needs it added here first). Without indexedPaths everything but _etag is indexed.
var cosmosContainers = [
  {
    name: 'products'
    partitionKey: '/id'
    defaultTtl: -1
  }
  {
    name: 'leases'
    partitionKey: '/id'
    defaultTtl: 0
  }
  {
    name: 'recentlyViewed'
    partitionKey: '/userId'
    defaultTtl: -1
    indexedPaths: []
    maxThroughput: cosmosRecentlyViewedMaxThroughput
  }
  {
    name: 'trendAggregates'
    partitionKey: '/pk'
    defaultTtl: -1
    // The materializer lists one partition key (docstore List: WHERE c["pk"] = @pk).
    indexedPaths: [
      '/pk/?'
    ]
  }
  {
    name: 'trendSnapshots'
    partitionKey: '/pk'
    defaultTtl: -1
  }
  {
    name: 'publishedState'
    partitionKey: '/productId'
    defaultTtl: 0
  }
  {
    name: 'outbox'
    partitionKey: '/topic'
    defaultTtl: -1
    // The relay lists one destination (docstore List: WHERE c["topic"] = @pk) and orders in memory.
    indexedPaths: [
      '/topic/?'
    ]
  }
  {
    name: 'idempotency'
    partitionKey: '/partnerId'
    defaultTtl: -1
    indexedPaths: []
  }
  {
    name: 'recommendations'
    partitionKey: '/productId'
    defaultTtl: -1
  }
  {
    name: 'jobState'
    partitionKey: '/job'
    defaultTtl: -1
  }
]

// Event Grid topics keyed by their app-setting prefix; the resource names carry the prefix too.
var eventGridTopics = {
  ProductEventsTopic: 'evgt-${baseName}-ProductEventsTopic'
  AnalyticsEventsTopic: 'evgt-${baseName}-AnalyticsEventsTopic'
}

// Functions that must run in one region only (triggers other than HTTP): disabled in the passive
// app with AzureWebJobs.<name>.Disabled. HTTP functions stay live in both apps.
var backgroundFunctions = [
  'RecentlyViewed'
  'Trends'
  'MaterializeTrends'
  'DetectAnomalies'
  'ProductChanges'
  'CaptureRollup'
  'CaptureFileCreated'
  'RelayOutbox'
  'ReplayDeadLetters'
]

// Handler settings (pkg/settings.AppSettings); the connection and host settings are built per app
// in modules/app-stack.bicep.
var handlerAppSettings = {
  COSMOS_DATABASE: cosmosDatabaseName
  RECENTLY_VIEWED_TTL_DAYS: string(recentlyViewedTtlDays)
  CAPTURE_CONTAINER: captureContainerName
  LOG_LEVEL: logLevel
  PARTNER_PRINCIPALS: string(partnerPrincipals)
  FEEDBACK_RATE_LIMIT_PER_MINUTE: string(feedbackRateLimitPerMinute)
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

var hasSecondary = !empty(secondaryLocation)
var secondaryRg = empty(secondaryResourceGroupName) ? resourceGroup().name : secondaryResourceGroupName
var useEventHubsGeoDr = hasSecondary && eventHubsSku == 'Standard'
var token = take(uniqueString(subscription().id, resourceGroup().id, namePrefix, environmentName), 6)
var baseName = toLower('${namePrefix}-${environmentName}-${token}')
var compactName = take(toLower(replace('${namePrefix}${environmentName}${token}', '-', '')), 20)
var allTags = union(tags, {
  project: 'eventpipeline'
  environment: environmentName
})

var names = {
  appIdentity: 'id-${baseName}-app'
  standbyIdentity: 'id-${baseName}-app-dr'
  deliveryIdentity: 'id-${baseName}-delivery'
  dataStorage: 'st${compactName}d'
  hostStorage: 'st${compactName}h'
  standbyHostStorage: 'st${compactName}r'
  cosmos: 'cosmos-${baseName}'
  eventHubs: 'evhns-${baseName}'
  eventHubsSecondary: 'evhns-${baseName}-dr'
  eventHubsAlias: 'evhns-${baseName}-geo'
  app: 'func-${baseName}'
  standbyApp: 'func-${baseName}-dr'
  plan: 'plan-${baseName}'
  standbyPlan: 'plan-${baseName}-dr'
  logAnalytics: 'log-${baseName}'
  standbyLogAnalytics: 'log-${baseName}-dr'
  appInsights: 'appi-${baseName}'
  standbyAppInsights: 'appi-${baseName}-dr'
}

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

// ---------------------------------------------------------------------------------------------
// Identities
// ---------------------------------------------------------------------------------------------

module appIdentity 'modules/identity.bicep' = {
  name: 'identity-app'
  params: {
    name: names.appIdentity
    location: location
    tags: allTags
  }
}

// Event Hubs Capture and Event Grid dead-lettering write to the data account as this identity.
module deliveryIdentity 'modules/identity.bicep' = {
  name: 'identity-delivery'
  params: {
    name: names.deliveryIdentity
    location: location
    tags: allTags
  }
}

module standbyIdentity 'modules/identity.bicep' = if (hasSecondary) {
  name: 'identity-standby'
  scope: resourceGroup(secondaryRg)
  params: {
    name: names.standbyIdentity
    location: secondaryLocation
    tags: allTags
  }
}

// ---------------------------------------------------------------------------------------------
// Data services
// ---------------------------------------------------------------------------------------------

module dataStorage 'modules/storage.bicep' = {
  name: 'storage-data'
  params: {
    name: names.dataStorage
    location: location
    tags: allTags
    skuName: dataStorageSku
    containers: dataBlobContainers
    expiryRules: [
      {
        name: 'expire-capture'
        prefix: '${captureContainerName}/'
        deleteAfterDays: captureRetentionDays
      }
    ]
    roleAssignments: [
      {
        principalId: deliveryIdentity.outputs.principalId
        roleDefinitionId: storageBlobDataContributor
        principalType: 'ServicePrincipal'
      }
    ]
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  params: {
    accountName: names.cosmos
    location: location
    tags: allTags
    secondaryLocation: secondaryLocation
    databaseName: cosmosDatabaseName
    containers: cosmosContainers
    databaseMaxThroughput: cosmosDatabaseMaxThroughput
    zoneRedundant: zoneRedundant
    enableFreeTier: cosmosEnableFreeTier
    continuousBackupTier: cosmosContinuousBackupTier
  }
}

// Standard Geo-DR: the empty partner namespace in the secondary region. Role assignments are not
// replicated by the pairing, so every data principal is granted here as well.
module eventHubsSecondary 'modules/eventhubs-namespace.bicep' = if (useEventHubsGeoDr) {
  name: 'eventhubs-secondary'
  scope: resourceGroup(secondaryRg)
  params: {
    name: names.eventHubsSecondary
    location: secondaryLocation
    tags: allTags
    capacity: eventHubsCapacity
    maximumThroughputUnits: eventHubsMaxThroughputUnits
    zoneRedundant: zoneRedundant
    captureIdentityId: deliveryIdentity.outputs.id
    dataPrincipals: concat([
      {
        principalId: appIdentity.outputs.principalId
        principalType: 'ServicePrincipal'
      }
      {
        principalId: standbyIdentity.outputs.principalId
        principalType: 'ServicePrincipal'
      }
    ], empty(operatorPrincipalId) ? [] : [
      {
        principalId: operatorPrincipalId
        principalType: operatorPrincipalType
      }
    ])
  }
}

module eventHubsNamespace 'modules/eventhubs.bicep' = {
  name: 'eventhubs'
  params: {
    name: names.eventHubs
    location: location
    tags: allTags
    sku: eventHubsSku
    capacity: eventHubsCapacity
    maximumThroughputUnits: eventHubsMaxThroughputUnits
    zoneRedundant: zoneRedundant
    hubs: eventHubs
    consumerGroups: concat(eventHubConsumerGroups, map(feedbackConsumerGroups, cg => {
      hub: 'feedback'
      name: cg
    }))
    retentionDays: eventHubsRetentionDays
    captureIdentityId: deliveryIdentity.outputs.id
    captureStorageAccountId: dataStorage.outputs.id
    captureContainerName: captureContainerName
    captureIntervalSeconds: captureIntervalSeconds
    geoReplicationLocation: eventHubsSku == 'Premium' ? secondaryLocation : ''
    maxReplicationLagSeconds: eventHubsMaxReplicationLagSeconds
    geoDrPartnerNamespaceId: useEventHubsGeoDr ? eventHubsSecondary.outputs.id : ''
    geoDrAliasName: names.eventHubsAlias
  }
}

module eventGrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  params: {
    location: location
    tags: allTags
    productTopicName: eventGridTopics.ProductEventsTopic
    analyticsTopicName: eventGridTopics.AnalyticsEventsTopic
    partnerSubscriptions: partnerSubscriptions
    deliveryIdentityId: deliveryIdentity.outputs.id
    deadLetterStorageAccountId: dataStorage.outputs.id
    deadLetterContainerName: 'deadletter'
    dataResidencyBoundary: eventGridDataResidency
  }
}

// ---------------------------------------------------------------------------------------------
// Data-plane access (before the apps start)
// ---------------------------------------------------------------------------------------------

var dataAccessTargets = {
  dataStorageAccountName: names.dataStorage
  eventHubsNamespaceName: names.eventHubs
  topicNames: [
    eventGridTopics.ProductEventsTopic
    eventGridTopics.AnalyticsEventsTopic
  ]
  cosmosAccountName: names.cosmos
}

module appAccess 'modules/data-access.bicep' = {
  name: 'access-app'
  params: {
    principalId: appIdentity.outputs.principalId
    principalType: 'ServicePrincipal'
    dataStorageAccountName: dataAccessTargets.dataStorageAccountName
    eventHubsNamespaceName: dataAccessTargets.eventHubsNamespaceName
    topicNames: dataAccessTargets.topicNames
    cosmosAccountName: dataAccessTargets.cosmosAccountName
  }
  dependsOn: [
    dataStorage
    cosmos
    eventHubsNamespace
    eventGrid
  ]
}

module standbyAccess 'modules/data-access.bicep' = if (hasSecondary) {
  name: 'access-standby'
  params: {
    principalId: standbyIdentity.outputs.principalId
    principalType: 'ServicePrincipal'
    dataStorageAccountName: dataAccessTargets.dataStorageAccountName
    eventHubsNamespaceName: dataAccessTargets.eventHubsNamespaceName
    topicNames: dataAccessTargets.topicNames
    cosmosAccountName: dataAccessTargets.cosmosAccountName
  }
  dependsOn: [
    dataStorage
    cosmos
    eventHubsNamespace
    eventGrid
  ]
}

module operatorAccess 'modules/data-access.bicep' = if (!empty(operatorPrincipalId)) {
  name: 'access-operator'
  params: {
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    dataStorageAccountName: dataAccessTargets.dataStorageAccountName
    eventHubsNamespaceName: dataAccessTargets.eventHubsNamespaceName
    topicNames: dataAccessTargets.topicNames
    cosmosAccountName: dataAccessTargets.cosmosAccountName
    blobRoleId: storageBlobDataContributor
  }
  dependsOn: [
    dataStorage
    cosmos
    eventHubsNamespace
    eventGrid
  ]
}

// ---------------------------------------------------------------------------------------------
// Function Apps: the primary, and the passive standby in the secondary region
// ---------------------------------------------------------------------------------------------

var appCommon = {
  plan: plan
  cosmosEndpoint: cosmos.outputs.endpoint
  eventHubsHost: eventHubsNamespace.outputs.clientHost
  dataBlobEndpoint: dataStorage.outputs.blobEndpoint
  productTopicEndpoint: eventGrid.outputs.productTopicEndpoint
  analyticsTopicEndpoint: eventGrid.outputs.analyticsTopicEndpoint
}

module primaryApp 'modules/app-stack.bicep' = {
  name: 'app-primary'
  params: {
    appName: names.app
    planName: names.plan
    location: location
    tags: allTags
    plan: appCommon.plan
    identityId: appIdentity.outputs.id
    identityClientId: appIdentity.outputs.clientId
    identityPrincipalId: appIdentity.outputs.principalId
    hostStorageName: names.hostStorage
    hostStorageSku: hostStorageSku
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    cosmosEndpoint: appCommon.cosmosEndpoint
    eventHubsHost: appCommon.eventHubsHost
    dataBlobEndpoint: appCommon.dataBlobEndpoint
    productTopicEndpoint: appCommon.productTopicEndpoint
    analyticsTopicEndpoint: appCommon.analyticsTopicEndpoint
    handlerAppSettings: handlerAppSettings
    cosmosPreferredRegions: hasSecondary ? [
      location
      secondaryLocation
    ] : [
      location
    ]
    disabledFunctions: activeRegion == 'primary' ? [] : backgroundFunctions
    flexRuntimeVersion: flexRuntimeVersion
    flexMaximumInstanceCount: flexMaximumInstanceCount
    flexInstanceMemoryMB: flexInstanceMemoryMB
    flexAlwaysReadyHttp: flexAlwaysReadyHttp
    premiumMaximumElasticWorkerCount: premiumMaximumElasticWorkerCount
    premiumMinimumInstances: premiumMinimumInstances
    partnerAuthClientId: partnerAuthClientId
    corsAllowedOrigins: corsAllowedOrigins
    allowBasicPublishingAuth: allowBasicPublishingAuth
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
  dependsOn: [
    appAccess
  ]
}

module standbyApp 'modules/app-stack.bicep' = if (hasSecondary) {
  name: 'app-standby'
  scope: resourceGroup(secondaryRg)
  params: {
    appName: names.standbyApp
    planName: names.standbyPlan
    location: secondaryLocation
    tags: allTags
    plan: appCommon.plan
    identityId: standbyIdentity.outputs.id
    identityClientId: standbyIdentity.outputs.clientId
    identityPrincipalId: standbyIdentity.outputs.principalId
    hostStorageName: names.standbyHostStorage
    hostStorageSku: hostStorageSku
    logAnalyticsName: names.standbyLogAnalytics
    appInsightsName: names.standbyAppInsights
    cosmosEndpoint: appCommon.cosmosEndpoint
    eventHubsHost: appCommon.eventHubsHost
    dataBlobEndpoint: appCommon.dataBlobEndpoint
    productTopicEndpoint: appCommon.productTopicEndpoint
    analyticsTopicEndpoint: appCommon.analyticsTopicEndpoint
    handlerAppSettings: handlerAppSettings
    cosmosPreferredRegions: [
      secondaryLocation
      location
    ]
    disabledFunctions: activeRegion == 'secondary' ? [] : backgroundFunctions
    flexRuntimeVersion: flexRuntimeVersion
    flexMaximumInstanceCount: flexMaximumInstanceCount
    flexInstanceMemoryMB: flexInstanceMemoryMB
    flexAlwaysReadyHttp: flexAlwaysReadyHttp
    premiumMaximumElasticWorkerCount: premiumMaximumElasticWorkerCount
    premiumMinimumInstances: premiumMinimumInstances
    partnerAuthClientId: partnerAuthClientId
    corsAllowedOrigins: corsAllowedOrigins
    allowBasicPublishingAuth: allowBasicPublishingAuth
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
  dependsOn: [
    standbyAccess
  ]
}

// ---------------------------------------------------------------------------------------------
// Capture -> Event Grid -> CaptureFileCreated (in the active region's app)
// ---------------------------------------------------------------------------------------------

module captureEvents 'modules/capture-events.bicep' = {
  name: 'capture-events'
  params: {
    namespaceName: names.eventHubs
    location: location
    tags: allTags
    deliveryIdentityId: deliveryIdentity.outputs.id
    functionAppId: activeRegion == 'secondary' && hasSecondary ? standbyApp.outputs.id : primaryApp.outputs.id
    deployCaptureSubscription: deployCaptureSubscription
    eventDeliverySchema: captureEventDeliverySchema
    deadLetterStorageAccountId: dataStorage.outputs.id
    deadLetterContainerName: 'deadletter'
  }
  dependsOn: [
    eventHubsNamespace
  ]
}

// ---------------------------------------------------------------------------------------------
// Outputs (docs/deploy.md reads them with az deployment group show -n main)
// ---------------------------------------------------------------------------------------------

output functionAppName string = primaryApp.outputs.name
output functionAppHostName string = primaryApp.outputs.defaultHostName
output hostStorageAccountName string = primaryApp.outputs.hostStorageName
output deploymentContainerName string = primaryApp.outputs.deploymentContainerName
output standbyFunctionAppName string = hasSecondary ? standbyApp.outputs.name : ''
output standbyFunctionAppHostName string = hasSecondary ? standbyApp.outputs.defaultHostName : ''
output standbyResourceGroup string = hasSecondary ? secondaryRg : ''
output standbyHostStorageAccountName string = hasSecondary ? standbyApp.outputs.hostStorageName : ''
output dataStorageAccountName string = dataStorage.outputs.name
output eventHubsNamespaceName string = eventHubsNamespace.outputs.name
output eventHubsHost string = eventHubsNamespace.outputs.clientHost
output eventHubsGeoDrSecondaryNamespace string = useEventHubsGeoDr ? names.eventHubsSecondary : ''
output cosmosAccountName string = cosmos.outputs.name
output cosmosEndpoint string = cosmos.outputs.endpoint
output productEventsTopicEndpoint string = eventGrid.outputs.productTopicEndpoint
output analyticsEventsTopicEndpoint string = eventGrid.outputs.analyticsTopicEndpoint
output captureSystemTopicName string = captureEvents.outputs.systemTopicName
output plan string = plan
