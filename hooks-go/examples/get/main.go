// Command get is an example Get hook: only the owner (or root) sees a todo's private notes, and
// private todos of others are left out of lists.
package main

import "github.com/deployd-ts/deployd-ts/hooks-go/hooks"

func main() {
	hooks.Register("get", func(ctx *hooks.EventContext) error {
		mine := ctx.IsRoot || (ctx.Me != nil && ctx.Me["id"] == ctx.Data["owner"])
		if !mine {
			if ctx.Data["private"] == true {
				// A cancel (not an error) drops the item from a list instead of failing it.
				ctx.Cancel("not found", 404)
			}
			ctx.Hide("notes")
		}
		return nil
	})
	hooks.Serve()
}
