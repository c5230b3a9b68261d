// One region's compute: the Function App (Flex Consumption FC1, or Elastic Premium EP1 as the
// fallback), its own host storage account and its own Application Insights. All connections are
// identity-based with the app's user-assigned identity; no key or connection string is stored.

param appName string
param planName string
param location string
param tags object = {}

@description('flex: Flex Consumption FC1 (custom runtime on Flex is UNCONFIRMED per region). premium: Elastic Premium EP1 Linux.')
@allowed([
  'flex'
  'premium'
])
param plan string = 'flex'

param identityId string
param identityClientId string
param identityPrincipalId string

param hostStorageName string
param hostStorageSku string = 'Standard_LRS'
param logAnalyticsName string
param appInsightsName string

@description('Cosmos DB account endpoint.')
param cosmosEndpoint string

@description('Event Hubs host the app connects to: the geo-replicated namespace or the Geo-DR alias.')
param eventHubsHost string

@description('Blob endpoint of the data account (dead letters, reports, Capture).')
param dataBlobEndpoint string
param productTopicEndpoint string
param analyticsTopicEndpoint string

@description('Handler settings shared by every app of the pipeline (see handlerAppSettings in main.bicep).')
param handlerAppSettings object

@description('Regions for COSMOS_PREFERRED_REGIONS, nearest first.')
param cosmosPreferredRegions array

@description('Functions to disable here (AzureWebJobs.<name>.Disabled=true): the background functions of the passive app.')
param disabledFunctions array = []

param flexRuntimeName string = 'custom'
param flexRuntimeVersion string = '1.0'

@minValue(40)
@maxValue(1000)
param flexMaximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
param flexInstanceMemoryMB int = 2048

@description('Always-ready instances for the HTTP scaling group (0 = scale from zero).')
param flexAlwaysReadyHttp int = 0

param premiumMaximumElasticWorkerCount int = 20
param premiumMinimumInstances int = 1

@description('Premium only: blob name of the package in the deployment container (WEBSITE_RUN_FROM_PACKAGE).')
param premiumPackageBlobName string = 'package.zip'

@description('Entra app registration (client id) accepted by App Service Authentication for partner callers; empty = authentication off.')
param partnerAuthClientId string = ''

param corsAllowedOrigins array = []

@description('Allow basic-auth (publishing profile) deployment to the SCM site. Off: publish with an Entra token.')
param allowBasicPublishingAuth bool = false

@description('Operator granted Storage Blob Data Contributor on the host account (to upload the Premium package); empty for none.')
param operatorPrincipalId string = ''
param operatorPrincipalType string = 'User'

var isFlex = plan == 'flex'
var deploymentContainerName = 'app-package'

var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

// Host storage: Blob Data Owner for host state, Event Hubs checkpoints, timer schedules, function
// keys and the Flex package; Queue and Table for host features (diagnostic events, retries).
var hostRoleAssignments = concat([
  {
    principalId: identityPrincipalId
    roleDefinitionId: storageBlobDataOwner
    principalType: 'ServicePrincipal'
  }
  {
    principalId: identityPrincipalId
    roleDefinitionId: storageQueueDataContributor
    principalType: 'ServicePrincipal'
  }
  {
    principalId: identityPrincipalId
    roleDefinitionId: storageTableDataContributor
    principalType: 'ServicePrincipal'
  }
], empty(operatorPrincipalId) ? [] : [
  {
    principalId: operatorPrincipalId
    roleDefinitionId: storageBlobDataContributor
    principalType: operatorPrincipalType
  }
])

module hostStorage 'storage.bicep' = {
  name: '${deployment().name}-storage'
  params: {
    name: hostStorageName
    location: location
    tags: tags
    skuName: hostStorageSku
    containers: [
      deploymentContainerName
    ]
    roleAssignments: hostRoleAssignments
  }
}

module monitoring 'monitoring.bicep' = {
  name: '${deployment().name}-monitoring'
  params: {
    logAnalyticsName: logAnalyticsName
    appInsightsName: appInsightsName
    location: location
    tags: tags
    metricsPublisherPrincipalIds: [
      identityPrincipalId
    ]
  }
}

// Host settings: identity-based host storage and Entra-authenticated telemetry.
var hostAppSettings = {
  AzureWebJobsStorage__accountName: hostStorageName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  AZURE_CLIENT_ID: identityClientId
  COSMOS_PREFERRED_REGIONS: join(cosmosPreferredRegions, ',')
}

// Identity-based connections: the prefixes are the bindings' "connection" values and the names the
// Go adapters read (pkg/settings). __credential/__clientId select the user-assigned identity.
var connectionAppSettings = {
  CosmosDBConnection__accountEndpoint: cosmosEndpoint
  CosmosDBConnection__credential: 'managedidentity'
  CosmosDBConnection__clientId: identityClientId
  EventHubsConnection__fullyQualifiedNamespace: eventHubsHost
  EventHubsConnection__credential: 'managedidentity'
  EventHubsConnection__clientId: identityClientId
  StorageConnection__blobServiceUri: dataBlobEndpoint
  StorageConnection__credential: 'managedidentity'
  StorageConnection__clientId: identityClientId
  ProductEventsTopic__topicEndpointUri: productTopicEndpoint
  ProductEventsTopic__credential: 'managedidentity'
  ProductEventsTopic__clientId: identityClientId
  AnalyticsEventsTopic__topicEndpointUri: analyticsTopicEndpoint
  AnalyticsEventsTopic__credential: 'managedidentity'
  AnalyticsEventsTopic__clientId: identityClientId
}

// Not on Flex: there the runtime lives in functionAppConfig.runtime and the platform manages the
// host version and the package location. Premium runs the package straight from the deployment
// container (no Azure Files content share, which would need a storage key).
var premiumOnlyAppSettings = {
  FUNCTIONS_EXTENSION_VERSION: '~4'
  FUNCTIONS_WORKER_RUNTIME: 'custom'
  WEBSITE_RUN_FROM_PACKAGE: '${hostStorage.outputs.blobEndpoint}${deploymentContainerName}/${premiumPackageBlobName}'
  WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID: identityId
}

var disabledFunctionSettings = toObject(disabledFunctions, f => 'AzureWebJobs.${f}.Disabled', f => 'true')

var allAppSettings = union(hostAppSettings, connectionAppSettings, handlerAppSettings, isFlex ? {} : premiumOnlyAppSettings, disabledFunctionSettings)

resource hostingPlan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: isFlex ? 'functionapp' : 'elastic'
  sku: isFlex ? {
    name: 'FC1'
    tier: 'FlexConsumption'
  } : {
    name: 'EP1'
    tier: 'ElasticPremium'
    family: 'EP'
  }
  properties: {
    reserved: true
    maximumElasticWorkerCount: isFlex ? null : premiumMaximumElasticWorkerCount
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: hostingPlan.id
    reserved: true
    httpsOnly: true
    clientAffinityEnabled: false
    keyVaultReferenceIdentity: identityId
    functionAppConfig: isFlex ? {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.outputs.blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: flexMaximumInstanceCount
        instanceMemoryMB: flexInstanceMemoryMB
        alwaysReady: flexAlwaysReadyHttp > 0 ? [
          {
            name: 'http'
            instanceCount: flexAlwaysReadyHttp
          }
        ] : []
      }
      runtime: {
        name: flexRuntimeName
        version: flexRuntimeVersion
      }
    } : null
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      linuxFxVersion: isFlex ? null : ''
      minimumElasticInstanceCount: isFlex ? null : premiumMinimumInstances
      functionAppScaleLimit: isFlex ? null : premiumMaximumElasticWorkerCount
      cors: {
        allowedOrigins: corsAllowedOrigins
      }
    }
  }
}

resource siteAppSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: allAppSettings
}

// App Service Authentication validates Entra bearer tokens of partner apps and passes the caller in
// X-MS-CLIENT-PRINCIPAL; anonymous requests still reach the function (function keys stay valid).
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(partnerAuthClientId)) {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          clientId: partnerAuthClientId
        }
        validation: {
          allowedAudiences: [
            partnerAuthClientId
            'api://${partnerAuthClientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
  dependsOn: [
    siteAppSettings
  ]
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: allowBasicPublishingAuth
  }
  dependsOn: [
    siteAppSettings
  ]
}

// Flex Consumption has no FTP endpoint.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = if (!isFlex) {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
  dependsOn: [
    scmBasicAuth
  ]
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
output hostStorageName string = hostStorage.outputs.name
output deploymentContainerName string = deploymentContainerName
output appInsightsName string = monitoring.outputs.appInsightsName
