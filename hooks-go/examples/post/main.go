// Command post is an example Post hook: it stamps the owner and creation time on a new todo and
// tells the todo's room about it. main_test.go tests it with hookstest, without a server.
package main

import (
	"time"

	"github.com/deployd-ts/deployd-ts/hooks-go/hooks"
)

func post(ctx *hooks.EventContext) error {
	if ctx.Me == nil {
		ctx.Cancel("log in to create todos", 401)
	}
	ctx.Data["owner"] = ctx.Me["id"]
	ctx.Data["createdAt"] = time.Now().UnixMilli()
	ctx.Emit("todo:created", map[string]interface{}{"title": ctx.Data["title"]}, "todos")
	return nil
}

func main() {
	hooks.Register("post", post)
	hooks.Serve()
}
