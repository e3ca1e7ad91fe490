// Command validate is an example Validate hook: a todo needs a title of at most 100 characters.
// main_test.go tests it with hookstest, without a server.
package main

import "github.com/deployd-ts/deployd-ts/hooks-go/hooks"

func validate(ctx *hooks.EventContext) error {
	title, _ := ctx.Data["title"].(string)
	if title == "" {
		ctx.Error("title", "is required")
	} else if len(title) > 100 {
		ctx.Error("title", "is too long")
	}
	return nil
}

func main() {
	hooks.Register("validate", validate)
	hooks.Serve()
}
