// Event Grid system topic on the Event Hubs namespace, and the subscription that delivers
// Microsoft.EventHub.CaptureFileCreated to the CaptureFileCreated function.
//
// An AzureFunction destination is validated against the function when the subscription is
// created, so the subscription can only be deployed after the code is published: first deploy with
// deployCaptureSubscription=false, `make publish`, then deploy again with it true (docs/deploy.md).

param namespaceName string
param location string
param tags object = {}

@description('Identity the system topic uses to dead-letter (Storage Blob Data Contributor on the dead-letter account).')
param deliveryIdentityId string

@description('Resource id of the Function App that receives the events (the active region).')
param functionAppId string

@description('Function that handles the events; its folder is functions/<name>.')
param functionName string = 'CaptureFileCreated'

param deployCaptureSubscription bool = false

@allowed([
  'CloudEventSchemaV1_0'
  'EventGridSchema'
])
param eventDeliverySchema string = 'CloudEventSchemaV1_0'

param deadLetterStorageAccountId string
param deadLetterContainerName string

resource namespace 'Microsoft.EventHub/namespaces@2026-01-01' existing = {
  name: namespaceName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: '${namespaceName}-events'
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${deliveryIdentityId}': {}
    }
  }
  properties: {
    source: namespace.id
    topicType: 'Microsoft.EventHub.Namespaces'
  }
}

resource captureSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (deployCaptureSubscription) {
  parent: systemTopic
  name: 'capture-file-created'
  properties: {
    eventDeliverySchema: eventDeliverySchema
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.EventHub.CaptureFileCreated'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
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
}

output systemTopicName string = systemTopic.name
