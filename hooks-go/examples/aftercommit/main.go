// Command aftercommit is an example AfterCommit hook: it changes the HTTP response after a write
// has been stored.
package main

import "github.com/deployd-ts/deployd-ts/hooks-go/hooks"

func main() {
	hooks.Register("aftercommit", func(ctx *hooks.EventContext) error {
		if ctx.Method == "POST" {
			ctx.SetResponseStatus(201)
			ctx.AddResponseMessage("todo created")
		}
		ctx.AddResponseField("collection", ctx.Collection)
		return nil
	})
	hooks.Serve()
}
