// Command login is an example Login hook: it refuses banned users and logs failed attempts.
package main

import "github.com/deployd-ts/deployd-ts/hooks-go/hooks"

func main() {
	hooks.Register("login", func(ctx *hooks.EventContext) error {
		if !ctx.Success {
			ctx.Log("failed login", map[string]interface{}{"username": ctx.Data["username"]})
			return nil
		}
		if ctx.Data["banned"] == true {
			ctx.Cancel("this account is banned", 403)
		}
		return nil
	})
	hooks.Serve()
}
