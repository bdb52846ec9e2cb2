// Package interop checks the chapters against an independent RFC 6455
// implementation, github.com/gorilla/websocket, used as a client.
//
// It is a module of its own so that the book's go.mod stays free of any
// WebSocket library: the chapters are built and run as programs, exactly as
// a reader runs them, and the client talks to them over loopback. Run it
// from this folder with go test ./... (.ci/run does).
package interop
