// Package server is lnsync's HTTP API: snapshot and dynamic sync for RGS
// clients, health and readiness for operators, Prometheus metrics, and the
// researchers' endpoints.
//
// Handlers return errors; one adapter maps them to a status and a short
// message, with details only in the log. The server never writes to the
// database and never reads outside the directories it is given.
package server
