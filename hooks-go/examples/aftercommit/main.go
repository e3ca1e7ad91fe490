// Command aftercommit is an example AfterCommit hook: it changes the HTTP response after a write
// has been stored. main_test.go tests it with hookstest, without a server.
package main

import "github.com/deployd-ts/deployd-ts/hooks-go/hooks"

func aftercommit(ctx *hooks.EventContext) error {
	if ctx.Method == "POST" {
		ctx.SetResponseStatus(201)
		ctx.AddResponseMessage("todo created")
	}
	ctx.AddResponseField("collection", ctx.Collection)
	return nil
}

func main() {
	hooks.Register("aftercommit", aftercommit)
	hooks.Serve()
}
