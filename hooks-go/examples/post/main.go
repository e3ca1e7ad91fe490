// Command post is an example Post hook: it stamps the owner and creation time on a new todo and
// tells the todo's room about it.
package main

import (
	"time"

	"github.com/deployd-ts/deployd-ts/hooks-go/hooks"
)

func main() {
	hooks.Register("post", func(ctx *hooks.EventContext) error {
		if ctx.Me == nil {
			ctx.Cancel("log in to create todos", 401)
		}
		ctx.Data["owner"] = ctx.Me["id"]
		ctx.Data["createdAt"] = time.Now().UnixMilli()
		ctx.Emit("todo:created", map[string]interface{}{"title": ctx.Data["title"]}, "todos")
		return nil
	})
	hooks.Serve()
}
