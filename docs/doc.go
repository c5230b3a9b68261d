// Package docs holds the event contract of the project, asyncapi.yaml (AsyncAPI 3.0) and the JSON
// Schemas of every event's data under schemas/, together with the test that validates events
// produced by the code against them, so the documents cannot drift from the implementation.
package docs
