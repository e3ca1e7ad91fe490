// Package hooks is the SDK for writing deployd-ts event hooks in Go.
//
// A Go hook is a small program (a go-plugin sidecar) that registers one handler per event and
// calls Serve:
//
//	func main() {
//		hooks.Register("validate", func(ctx *hooks.EventContext) error {
//			if title, _ := ctx.Data["title"].(string); title == "" {
//				ctx.Error("title", "is required")
//			}
//			return nil
//		})
//		hooks.Serve()
//	}
//
// deployd-ts starts the program, speaks the HashiCorp go-plugin handshake with it (see
// ProtocolVersion, MagicCookieKey and MagicCookieValue) and calls the gRPC HookService.Run of
// proto/deployd/hooks/v1/hooks.proto once per hook invocation. Run builds an EventContext from the
// request, calls the handler registered for its event and turns what the handler did into a
// HookResult, with the same meaning as the JavaScript hook API:
//
//   - Data is the document; changes to it (or a new map assigned to it) are kept.
//   - Cancel stops the hook and the request (see EventContext.Cancel); a returned error or a panic
//     stops it as a failure (Cancel.is_error).
//   - Error collects validation errors (400 {"errors": …}); Hide, Protect, Emit, Log and the
//     response functions are recorded and applied by the server.
//
// Handlers run concurrently, one goroutine per request: state shared between invocations must be
// safe for concurrent use. JSON numbers arrive as float64, as they do in JavaScript.
package hooks
