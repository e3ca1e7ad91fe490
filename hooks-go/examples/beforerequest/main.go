// Command beforerequest is an example BeforeRequest hook: it limits anonymous list queries to 20
// items and refuses DELETE to everyone but root.
package main

import "github.com/deployd-ts/deployd-ts/hooks-go/hooks"

func main() {
	hooks.Register("beforerequest", func(ctx *hooks.EventContext) error {
		// In BeforeRequest, ctx.Event is the request event: GET POST PUT DELETE QUERY LOGIN LOGOUT.
		if ctx.Event == "DELETE" && !ctx.IsRoot {
			ctx.Cancel("only root may delete", 403)
		}
		if ctx.Event == "QUERY" && ctx.Me == nil {
			ctx.Query["$limit"] = 20
		}
		return nil
	})
	hooks.Serve()
}
