// Command put is an example Put hook: owner and createdAt cannot change, and completing a todo
// is logged.
package main

import "github.com/deployd-ts/deployd-ts/hooks-go/hooks"

func main() {
	hooks.Register("put", func(ctx *hooks.EventContext) error {
		ctx.Protect("owner")
		ctx.Protect("createdAt")
		if ctx.Data["done"] == true && ctx.Previous["done"] != true {
			ctx.Log("todo completed", map[string]interface{}{"id": ctx.Data["id"]})
		}
		return nil
	})
	hooks.Serve()
}
