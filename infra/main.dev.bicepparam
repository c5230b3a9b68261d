// Development: one region, Standard Event Hubs, Flex Consumption, small throughput.
//   make deploy ENV=dev RG=<rg>
// Environment variables read at deployment time:
//   OPERATOR_PRINCIPAL_ID        your Entra object id (az ad signed-in-user show --query id -o tsv),
//                                granted data access to send a test click and read Cosmos DB
//   DEPLOY_CAPTURE_SUBSCRIPTION  true on the second deployment, after `make publish`
//   FUNCTIONS_PLAN               flex (default) or premium, if Flex has no custom runtime in your region
using './main.bicep'

param environmentName = 'dev'
// The ternaries keep the values within the parameters' allowed literals.
param plan = readEnvironmentVariable('FUNCTIONS_PLAN', 'flex') == 'premium' ? 'premium' : 'flex'

param eventHubsSku = 'Standard'
param eventHubsCapacity = 1
param eventHubsMaxThroughputUnits = 2
param eventHubsRetentionDays = 1
param clickstreamPartitionCount = 4
param feedbackPartitionCount = 2
param captureIntervalSeconds = 300
param captureRetentionDays = 7

param cosmosDatabaseMaxThroughput = 1000
param cosmosRecentlyViewedMaxThroughput = 0

param dataStorageSku = 'Standard_LRS'
param hostStorageSku = 'Standard_LRS'
param zoneRedundant = false

param flexMaximumInstanceCount = 40
param flexInstanceMemoryMB = 2048
param flexAlwaysReadyHttp = 0
param premiumMaximumElasticWorkerCount = 5
param premiumMinimumInstances = 1

param logLevel = 'debug'
param recentlyViewedTtlDays = 30
param feedbackRateLimitPerMinute = 600
param partnerPrincipals = {}
param partnerSubscriptions = []

param secondaryLocation = ''
param deployCaptureSubscription = bool(readEnvironmentVariable('DEPLOY_CAPTURE_SUBSCRIPTION', 'false'))
param operatorPrincipalId = readEnvironmentVariable('OPERATOR_PRINCIPAL_ID', '')
