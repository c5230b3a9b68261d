// Cosmos DB for NoSQL: one account (optionally in two regions), one database with shared autoscale
// throughput, and the containers the code and the bindings use. Entra ID only (local auth off):
// principals get data access through sqlRoleAssignments (see data-access.bicep).

param accountName string
param location string
param tags object = {}

@description('Second region for a read replica and service-managed failover; empty for a single region.')
param secondaryLocation string = ''

param databaseName string

@description('Containers: [{ name, partitionKey, defaultTtl (-1 on per item, 0 off, >0 seconds), indexedPaths? (omit for the default policy), maxThroughput? (dedicated autoscale) }].')
param containers array

@description('Autoscale maximum RU/s shared by the containers without dedicated throughput.')
@minValue(1000)
param databaseMaxThroughput int = 1000

param zoneRedundant bool = false
param enableFreeTier bool = false

@allowed([
  'Continuous7Days'
  'Continuous30Days'
])
param continuousBackupTier string = 'Continuous7Days'

var regions = empty(secondaryLocation) ? [
  location
] : [
  location
  secondaryLocation
]

// Everything indexed except _etag: for containers that are queried in several ways.
var defaultIndexingPolicy = {
  indexingMode: 'consistent'
  automatic: true
  includedPaths: [
    {
      path: '/*'
    }
  ]
  excludedPaths: [
    {
      path: '/"_etag"/?'
    }
  ]
}

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: accountName
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    // Session: read-your-writes per client session; the ETag read-modify-write of lists and
    // aggregates needs a single write region (see docs/dr.md).
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: [for (region, i) in regions: {
      locationName: region
      failoverPriority: i
      isZoneRedundant: zoneRedundant
    }]
    enableAutomaticFailover: true
    enableMultipleWriteLocations: false
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    enableFreeTier: enableFreeTier
    publicNetworkAccess: 'Enabled'
    backupPolicy: {
      type: 'Continuous'
      continuousModeProperties: {
        tier: continuousBackupTier
      }
    }
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
    options: {
      autoscaleSettings: {
        maxThroughput: databaseMaxThroughput
      }
    }
  }
}

resource sqlContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = [for c in containers: {
  parent: database
  name: c.name
  properties: {
    resource: union({
      id: c.name
      partitionKey: {
        paths: [
          c.partitionKey
        ]
        kind: 'Hash'
        version: 2
      }
      // Write-heavy containers list the only paths they filter or sort on (often none: point
      // reads by id and partition key); every other write then skips index maintenance.
      indexingPolicy: c.?indexedPaths == null ? defaultIndexingPolicy : {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: map(c.?indexedPaths ?? [], p => {
          path: p
        })
        excludedPaths: [
          {
            path: '/*'
          }
        ]
      }
    }, c.defaultTtl == 0 ? {} : {
      defaultTtl: c.defaultTtl
    })
    options: (c.?maxThroughput ?? 0) > 0 ? {
      autoscaleSettings: {
        maxThroughput: c.maxThroughput
      }
    } : {}
  }
}]

output id string = account.id
output name string = account.name
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
