// Event Grid custom topics (CloudEvents 1.0 in and out, Entra ID publishing only) and the partner
// webhook subscriptions generated from a parameter array. Failed deliveries are dead-lettered to
// Blob with the topic's user-assigned identity.

param location string
param tags object = {}

@description('Resource name of the topic whose app-setting prefix is ProductEventsTopic.')
param productTopicName string

@description('Resource name of the topic whose app-setting prefix is AnalyticsEventsTopic.')
param analyticsTopicName string

@description('Partner webhook subscriptions (shape: see the partnerSubscription type in main.bicep).')
param partnerSubscriptions array = []

@description('Identity used to dead-letter (needs Storage Blob Data Contributor on the dead-letter account).')
param deliveryIdentityId string
param deadLetterStorageAccountId string
param deadLetterContainerName string

@description('WithinGeopair lets Microsoft fail a topic over to the paired region; WithinRegion keeps data in-region and disables that.')
@allowed([
  'WithinGeopair'
  'WithinRegion'
])
param dataResidencyBoundary string = 'WithinGeopair'

var topicProperties = {
  inputSchema: 'CloudEventSchemaV1_0'
  disableLocalAuth: true
  publicNetworkAccess: 'Enabled'
  minimumTlsVersionAllowed: '1.2'
  dataResidencyBoundary: dataResidencyBoundary
}

var tenantId = tenant().tenantId

var topicIdentity = {
  type: 'UserAssigned'
  userAssignedIdentities: {
    '${deliveryIdentityId}': {}
  }
}

resource productTopic 'Microsoft.EventGrid/topics@2025-02-15' = {
  name: productTopicName
  location: location
  tags: union(tags, {
    settingPrefix: 'ProductEventsTopic'
  })
  identity: topicIdentity
  properties: topicProperties
}

resource analyticsTopic 'Microsoft.EventGrid/topics@2025-02-15' = {
  name: analyticsTopicName
  location: location
  tags: union(tags, {
    settingPrefix: 'AnalyticsEventsTopic'
  })
  identity: topicIdentity
  properties: topicProperties
}

// Delivery: CloudEvents 1.0 to the partner's HTTPS endpoint (the endpoint must answer the
// CloudEvents abuse-protection OPTIONS handshake when the subscription is created), an Entra ID
// bearer token when the partner names its app registration, retries, then dead-letter to Blob.
var subscriptionSpecs = map(partnerSubscriptions, sub => {
  name: sub.name
  topic: sub.?topic ?? 'ProductEventsTopic'
  properties: {
    eventDeliverySchema: 'CloudEventSchemaV1_0'
    destination: {
      endpointType: 'WebHook'
      properties: union({
        endpointUrl: sub.endpoint
        maxEventsPerBatch: sub.?maxEventsPerBatch ?? 1
        preferredBatchSizeInKilobytes: 64
        minimumTlsVersionAllowed: '1.2'
      }, empty(sub.?azureActiveDirectoryApplicationIdOrUri ?? '') ? {} : {
        azureActiveDirectoryTenantId: sub.?azureActiveDirectoryTenantId ?? tenantId
        azureActiveDirectoryApplicationIdOrUri: sub.?azureActiveDirectoryApplicationIdOrUri
      })
    }
    filter: {
      includedEventTypes: sub.?includedEventTypes
      subjectBeginsWith: sub.?subjectBeginsWith ?? ''
      subjectEndsWith: sub.?subjectEndsWith ?? ''
      isSubjectCaseSensitive: false
      enableAdvancedFilteringOnArrays: true
    }
    retryPolicy: {
      maxDeliveryAttempts: sub.?maxDeliveryAttempts ?? 30
      eventTimeToLiveInMinutes: sub.?eventTimeToLiveInMinutes ?? 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: deliveryIdentityId
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
})

resource productSubscriptions 'Microsoft.EventGrid/topics/eventSubscriptions@2025-02-15' = [for s in filter(subscriptionSpecs, x => x.topic == 'ProductEventsTopic'): {
  parent: productTopic
  name: s.name
  properties: s.properties
}]

resource analyticsSubscriptions 'Microsoft.EventGrid/topics/eventSubscriptions@2025-02-15' = [for s in filter(subscriptionSpecs, x => x.topic == 'AnalyticsEventsTopic'): {
  parent: analyticsTopic
  name: s.name
  properties: s.properties
}]

output productTopicId string = productTopic.id
output productTopicEndpoint string = productTopic.properties.endpoint
output analyticsTopicId string = analyticsTopic.id
output analyticsTopicEndpoint string = analyticsTopic.properties.endpoint
