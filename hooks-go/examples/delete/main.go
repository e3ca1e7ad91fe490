// Command delete is an example Delete hook: only the owner or root may delete a todo, and the
// deletion is announced.
package main

import (
	"errors"

	"github.com/deployd-ts/deployd-ts/hooks-go/hooks"
)

func main() {
	hooks.Register("delete", func(ctx *hooks.EventContext) error {
		if !ctx.IsRoot && (ctx.Me == nil || ctx.Me["id"] != ctx.Data["owner"]) {
			// A returned error fails the request as a hook error (400 unless it has StatusCode()).
			return errors.New("not your todo")
		}
		ctx.Emit("todo:deleted", map[string]interface{}{"id": ctx.Data["id"]})
		return nil
	})
	hooks.Serve()
}
